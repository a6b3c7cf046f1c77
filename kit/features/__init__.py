"""Stage 2, features: backbones (pixels in, frame-aligned vectors out), the feature cache of the
windowed path, and whole-video feature extraction into the layout MS-TCN and its successors read."""
