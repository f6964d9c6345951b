"""MFU's denominator: exact GPU names to dense bf16 peaks, null (with one notice) for unknown GPUs."""

from __future__ import annotations

import pytest
import torch

from train import metrics
from train.metrics import gpu_peak_flops, mfu, peak_flops

# torch.cuda.get_device_name() strings and the dense bf16 tensor-core peak of each (datasheets).
NAMES = {
    "NVIDIA H100 80GB HBM3": 989e12,
    "NVIDIA H100 PCIe": 756e12,
    "NVIDIA H100 NVL": 835e12,
    "NVIDIA H200": 989e12,
    "NVIDIA A100-SXM4-80GB": 312e12,
    "NVIDIA A100-SXM4-40GB": 312e12,
    "NVIDIA A100-PCIE-40GB": 312e12,
    "NVIDIA L40S": 362e12,
    "NVIDIA B200": 2250e12,
}


@pytest.mark.parametrize(("name", "peak"), NAMES.items())
def test_known_gpus_get_their_own_peak(name: str, peak: float) -> None:
    assert gpu_peak_flops(name) == peak


def test_pcie_and_nvl_cards_are_not_given_the_sxm_figure() -> None:
    sxm = gpu_peak_flops("NVIDIA H100 80GB HBM3")
    assert gpu_peak_flops("NVIDIA H100 PCIe") < sxm and gpu_peak_flops("NVIDIA H100 NVL") < sxm


@pytest.mark.parametrize("name", ["NVIDIA GeForce RTX 4090", "NVIDIA H100", "NVIDIA H20", "H100 PCIe"])
def test_unknown_gpu_gives_null_and_one_notice(name: str, capsys, monkeypatch) -> None:
    monkeypatch.setattr(metrics, "_unknown_noticed", set())
    assert gpu_peak_flops(name) is None and gpu_peak_flops(name) is None
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and repr(name) in lines[0] and "trainer.peak_flops" in lines[0]
    assert mfu(1000.0, 1, 6e9, None) is None


def test_the_notice_is_for_the_main_rank_only(capsys, monkeypatch) -> None:
    monkeypatch.setattr(metrics, "_unknown_noticed", set())
    assert gpu_peak_flops("NVIDIA GeForce RTX 4090", announce=False) is None
    assert capsys.readouterr().err == ""


def test_cuda_device_name_is_looked_up_and_the_override_wins(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 PCIe")
    cuda = torch.device("cuda", 0)
    assert peak_flops(cuda, None) == 756e12
    assert peak_flops(cuda, 123e12) == 123e12
    assert mfu(2000.0, 2, 6e9, 756e12) == pytest.approx(1000.0 * 6e9 / 756e12)
