"""srlab: classic CNN image super-resolution (SRCNN, FSRCNN, ESPCN) done by the papers' protocol.

Quick start::

    import srlab
    model = srlab.load_pretrained("fsrcnn", scale=3)      # shipped weights
    model = srlab.create_model("fsrcnn", scale=3)          # fresh weights
    srlab.list_models()                                   # registered names
"""

__version__ = "0.1.0"

from .checkpoint import CheckpointError, load_model, save_model  # noqa: E402
from .ensemble import SelfEnsemble  # noqa: E402
from .features import extract_features  # noqa: E402
from .imresize import imresize  # noqa: E402
from .metrics import PSNR, SSIM, psnr, ssim  # noqa: E402
from .models import create_model, list_models  # noqa: E402
from .pretrained import available_pretrained, load_pretrained  # noqa: E402
from .upscale import upscale  # noqa: E402

__all__ = [
    "__version__",
    "list_models",
    "create_model",
    "load_model",
    "save_model",
    "load_pretrained",
    "available_pretrained",
    "CheckpointError",
    "imresize",
    "extract_features",
    "psnr",
    "ssim",
    "PSNR",
    "SSIM",
    "upscale",
    "SelfEnsemble",
]
