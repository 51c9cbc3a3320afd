"""HW3: conditional anime-face GAN from hair and eye colour tags (MLDS 2017/2018)."""

HOMEWORK = "hw3_gan"
