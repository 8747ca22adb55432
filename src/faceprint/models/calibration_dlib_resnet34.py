"""Calibrated thresholds of dlib-resnet34, measured by bench/calibrate_thresholds.py.

Do not edit by hand: rerun the script (it needs ../shared/data/lfw_dev) and paste its
``--python`` output here. The full JSON of the run is bench/results_calibration_dlib_resnet34.json.
Measured 2026-11-28 on a 2-core x86_64 machine, dlib-bin 20.0.1, detector hog (default policy).
"""

from faceprint.models.card import Calibration

DLIB_RESNET34_CALIBRATION = Calibration(
    dataset="lfw_dev: LFW View 2 folds 1-3 (3825 images, 150x150), every pair formed from its identities",
    n_images=3803,
    n_identities=1698,
    n_genuine_pairs=26452,
    n_impostor_pairs=7203051,
    thresholds={
        1e-01: 0.8803144097328186,
        1e-02: 0.9079714417457581,
        1e-03: 0.9257754683494568,
        1e-04: 0.940621554851532,
        1e-05: 0.9518761038780212,
    },
    frr={
        1e-01: 0.00034,
        1e-02: 0.01153,
        1e-03: 0.07542,
        1e-04: 0.266294,
        1e-05: 0.543059,
    },
    notes=(
        "detector hog, face nearest the image centre; 22 of 3825 images "
        "had no detected face and were left out. Impostor pairs share images, so they are not "
        "independent; at FAR 1e-5 about 72 impostor pairs decide the threshold."
    ),
)
