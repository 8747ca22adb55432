from tests.unit.gallery.stores import gallery, store  # noqa: F401  (the shared, parametrised fixtures)
