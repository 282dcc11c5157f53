"""Writes timm_logits.npz: timm's logits for every model of timm_reference.ARCHS.

Run where torch and timm are installed (keras_se is not needed):

    python tests/weights/data/make_timm_logits.py

For each model it checks that timm's state dict has exactly the names and
shapes of `timm_reference.state_shapes`, loads `synthetic_state_dict` into
it (strict), runs `synthetic_input` in eval mode and stores the logits under
the model's name, with the input under "input" and the timm version under
"timm_version".
"""

import sys
from pathlib import Path

import numpy as np
import timm
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import timm_reference  # noqa: E402


def main():
    x = timm_reference.synthetic_input()
    out = {"input": x, "timm_version": np.array(timm.__version__)}
    for name in timm_reference.ARCHS:
        model = timm.create_model(name, pretrained=False).eval()
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        want = timm_reference.state_shapes(name)
        if got != want:
            diff = sorted(set(got.items()) ^ set(want.items()))[:10]
            raise SystemExit(f"{name}: timm's state dict differs from timm_reference: {diff}")
        state = timm_reference.synthetic_state_dict(want)
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()}, strict=True)
        with torch.no_grad():
            out[name] = model(torch.from_numpy(x)).numpy()
        print(name, out[name].shape, float(np.abs(out[name]).max()))
    np.savez_compressed(Path(__file__).with_name("timm_logits.npz"), **out)


if __name__ == "__main__":
    main()
