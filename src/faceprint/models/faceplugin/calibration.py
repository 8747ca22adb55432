"""Calibrated thresholds of fr-feature and fr-feature-flip, measured by bench/faceplugin.py.

Do not edit by hand: rerun the script (it needs ../shared/data/lfw_dev and the Faceplugin pack)
with ``--python`` and paste its output here. The full JSON of the run is
bench/results_faceplugin.json; bench/README.md, section 'Faceplugin models', has the tables.
Measured 2026-11-29 on a 2-core x86_64 machine (shared, load average ~5), onnxruntime's CPU
provider, with the configuration that is to be the default: detector fr-detect (its pyramid
policy), landmarks fr-landmark (68 points reduced to ArcFace's 5), the face nearest the centre.
As for dlib-resnet34 (:mod:`faceprint.models.calibration_dlib_resnet34`), every same-person and
every different-person pair formed from lfw_dev's identities is scored.
"""

from faceprint.models.card import Calibration

FR_FEATURE_CALIBRATION = Calibration(
    dataset="lfw_dev: LFW View 2 folds 1-3 (3825 images, 150x150), every pair formed from its identities",
    n_images=3825,
    n_identities=1708,
    n_genuine_pairs=26634,
    n_impostor_pairs=7286766,
    thresholds={
        1e-01: 0.131836399435997,
        1e-02: 0.2455255389213562,
        1e-03: 0.3363237679004669,
        1e-04: 0.4166543483734131,
        1e-05: 0.48421579599380493,
    },
    frr={
        1e-01: 0.001652,
        1e-02: 0.005707,
        1e-03: 0.014455,
        1e-04: 0.032214,
        1e-05: 0.069122,
    },
    notes=(
        "detector fr-detect, landmarks fr-landmark, face nearest the image centre; 0 of 3825 "
        "images had no detected face and were left out. Impostor pairs share images, so they are not "
        "independent; at FAR 1e-5 about 72 impostor pairs decide the threshold."
    ),
)


FR_FEATURE_FLIP_CALIBRATION = Calibration(
    dataset="lfw_dev: LFW View 2 folds 1-3 (3825 images, 150x150), every pair formed from its identities",
    n_images=3825,
    n_identities=1708,
    n_genuine_pairs=26634,
    n_impostor_pairs=7286766,
    thresholds={
        1e-01: 0.13206498324871063,
        1e-02: 0.246000275015831,
        1e-03: 0.3368690311908722,
        1e-04: 0.4171302318572998,
        1e-05: 0.4840845763683319,
    },
    frr={
        1e-01: 0.001352,
        1e-02: 0.005782,
        1e-03: 0.012766,
        1e-04: 0.029812,
        1e-05: 0.062777,
    },
    notes=(
        "detector fr-detect, landmarks fr-landmark, face nearest the image centre; 0 of 3825 "
        "images had no detected face and were left out. Impostor pairs share images, so they are not "
        "independent; at FAR 1e-5 about 72 impostor pairs decide the threshold."
    ),
)
