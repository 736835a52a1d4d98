"""On-device face analysis: the detector, the face mesh, the attribute models and the pipeline
that runs them on a frame (:mod:`kiosk.vision.pipeline`). Interpreter objects never leave
:mod:`kiosk.vision.runtime`."""
