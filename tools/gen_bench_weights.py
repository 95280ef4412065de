"""Writes bench/data/resnet34.pth: a full-size torchvision resnet34 state dict (random weights, 87 MB), the
exact format of the ImageNet checkpoint, for the `pth_load_resnet34_ms` benchmark. Not committed.
Run with /usr/bin/python3 (PyTorch 1.13 + torchvision)."""
import os

import torch
import torchvision

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "data", "resnet34.pth")
os.makedirs(os.path.dirname(out), exist_ok=True)
torch.manual_seed(0)
torch.save(torchvision.models.resnet34().state_dict(), out)
print(out, os.path.getsize(out), "bytes")
