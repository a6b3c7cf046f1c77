"""Stage 3, the temporal model: the pose graph, the multi-stage TCN and its heads, the losses, the
training loop, run folders and the segmentation metrics validation uses."""
