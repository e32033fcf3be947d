"""Dark-video data: manifests, clip sampling, decoding, synthetic data and file checks."""
