"""GAN generator for synthetic radiographs: training, checkpoints, sampling and a CT projection renderer.

Pure PyTorch + numpy; never imports Django so it runs standalone on a GPU box.
"""

__version__ = "0.2.0"
