"""BlazePose on raw frames from stdin: the half of ``python -m kit poses`` that runs next to mediapipe.

This file imports nothing from ``kit``: it runs under the Python of the environment that holds
mediapipe (``requirements-poses.txt``), which cannot share one environment with the kit (mediapipe
0.10.21 needs protobuf < 5; tensorboard brings protobuf 7, under which ``solutions.pose`` fails
with ``FieldDescriptor has no attribute 'label'``). :mod:`kit.data.pose_estimation` starts it as
a subprocess, decodes the video itself and streams frames through a pipe.

Protocol: ``python pose_worker.py WIDTH HEIGHT MIN_DETECTION MIN_TRACKING``. The worker builds
``mp.solutions.pose.Pose`` (video mode, ``model_complexity=1``: the full landmark model, the one
the wheel ships; lite and heavy would be downloaded), writes one line ``ok mediapipe <version>``
to stdout, then for each ``HEIGHT * WIDTH * 3`` bytes of RGB on stdin writes ``33 * 3`` float32
(x, y in pixels, visibility; NaN when no person was found) to stdout, until stdin ends. On a
failure to start it writes ``error <message>`` and exits 3.

Legend: ``J = 33`` BlazePose landmarks.
"""
import sys

J = 33  # BlazePose landmarks (mediapipe/python/solutions/pose.py, class PoseLandmark)


def _read_exactly(stream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def main(argv: list) -> int:
    width, height = int(argv[0]), int(argv[1])
    min_det, min_track = float(argv[2]), float(argv[3])
    out = sys.stdout.buffer
    try:
        import numpy as np
        import mediapipe as mp

        pose = mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
                                      min_detection_confidence=min_det, min_tracking_confidence=min_track)
    except Exception as e:  # noqa: BLE001 - reported to the kit as one line, which says how to install
        out.write(f"error {type(e).__name__}: {e}".replace("\n", " ").encode() + b"\n")
        out.flush()
        return 3
    out.write(f"ok mediapipe {getattr(mp, '__version__', '?')}\n".encode())
    out.flush()
    size = width * height * 3
    scale = np.array([width, height], np.float32)
    while True:
        raw = _read_exactly(sys.stdin.buffer, size)
        if len(raw) < size:
            return 0 if not raw else 4  # a partial frame: the kit died mid-write
        rgb = np.frombuffer(raw, np.uint8).reshape(height, width, 3)
        res = pose.process(rgb)
        kp = np.full((J, 3), np.nan, np.float32)  # (J, 3) x, y, visibility
        if res.pose_landmarks is not None:
            lm = res.pose_landmarks.landmark
            # landmarks are normalised to [0, 1] by the image width and height (mediapipe pose docs)
            kp[:, :2] = np.array([[p.x, p.y] for p in lm], np.float32) * scale
            kp[:, 2] = [p.visibility for p in lm]
        out.write(kp.tobytes())
        out.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
