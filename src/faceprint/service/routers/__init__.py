"""The service's routes, one router per resource; :func:`faceprint.service.create_app` includes them."""
