"""HW2: video captioning (S2VT with attention) on the course MSVD features."""

HOMEWORK = "hw2_video_caption"
