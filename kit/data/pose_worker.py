"""BlazePose on raw frames from stdin: the half of ``python -m kit poses`` that runs next to mediapipe.

This file imports nothing from ``kit``: it runs under the Python of the environment that holds
mediapipe (``requirements-poses.txt``), which cannot share one environment with the kit (mediapipe
0.10.21 needs protobuf < 5; tensorboard brings protobuf 7, under which ``solutions.pose`` fails
with ``FieldDescriptor has no attribute 'label'``). :mod:`kit.data.pose_estimation` starts it as
a subprocess, decodes the video itself and streams frames through a pipe.

Protocol: ``python pose_worker.py MIN_DETECTION MIN_TRACKING``. The worker imports mediapipe and
writes one line ``ok mediapipe <version>`` to stdout (or ``error <message>`` and exits 3). Then,
on stdin, each frame comes as a header of two little-endian uint32, WIDTH and HEIGHT, followed by
``HEIGHT * WIDTH * 3`` bytes of RGB; for each the worker writes ``F`` and ``33 * 3`` float32 (x, y
in pixels, visibility; NaN when no person was found). The header ``0, 0`` starts a new video (a
fresh ``mp.solutions.pose.Pose``: video mode tracks the person from frame to frame, which must not
carry over); ``0, 1`` ends one, answered by ``E``. The worker exits when stdin ends. It runs
``model_complexity=1``, the full landmark model, the one the wheel ships (lite and heavy would be
downloaded).

Legend: ``J = 33`` BlazePose landmarks.
"""
import struct
import sys

J = 33  # BlazePose landmarks (mediapipe/python/solutions/pose.py, class PoseLandmark)
HEADER = struct.Struct("<II")  # width, height before each frame (kit.data.pose_estimation.HEADER)


def _read_exactly(stream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def main(argv: list) -> int:
    min_det, min_track = float(argv[0]), float(argv[1])
    out = sys.stdout.buffer
    try:
        import numpy as np
        import mediapipe as mp

        def new_pose():
            return mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True,
                                          min_detection_confidence=min_det, min_tracking_confidence=min_track)
        pose = new_pose()
    except Exception as e:  # noqa: BLE001 - reported to the kit as one line, which says how to install
        out.write(f"error {type(e).__name__}: {e}".replace("\n", " ").encode() + b"\n")
        out.flush()
        return 3
    out.write(f"ok mediapipe {getattr(mp, '__version__', '?')}\n".encode())
    out.flush()
    while True:
        head = _read_exactly(sys.stdin.buffer, HEADER.size)
        if len(head) < HEADER.size:
            return 0 if not head else 4  # stdin ended (mid-header: the kit died)
        width, height = HEADER.unpack(head)
        if width == 0:
            if height == 0:  # a new video: forget the person tracked in the last one
                pose.close()
                pose = new_pose()
            else:  # the end of a video
                out.write(b"E")
                out.flush()
            continue
        raw = _read_exactly(sys.stdin.buffer, width * height * 3)
        if len(raw) < width * height * 3:
            return 4
        rgb = np.frombuffer(raw, np.uint8).reshape(height, width, 3)
        res = pose.process(rgb)
        kp = np.full((J, 3), np.nan, np.float32)  # (J, 3) x, y, visibility
        if res.pose_landmarks is not None:
            lm = res.pose_landmarks.landmark
            # landmarks are normalised to [0, 1] by the image width and height (mediapipe pose docs)
            kp[:, :2] = np.array([[p.x, p.y] for p in lm], np.float32) * np.array([width, height], np.float32)
            kp[:, 2] = [p.visibility for p in lm]
        out.write(b"F" + kp.tobytes())
        out.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
