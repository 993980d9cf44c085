"""Checkpoints: zoo files load (with or without optimizer state), bad ones fail with the promised message."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers_ckpt import write_zoo_checkpoint

pytestmark = pytest.mark.mindspore

from roadseg.errors import WeightsError  # noqa: E402
from roadseg.model.checkpoint import load_into, read_checkpoint, save_checkpoint  # noqa: E402
from roadseg.model.convention import InputConvention  # noqa: E402
from roadseg.model.loaded import ModelRuntime, load_model  # noqa: E402
from roadseg.model.network import DLinkNet34  # noqa: E402


def network_arrays(network) -> dict[str, np.ndarray]:
    return {p.name: p.asnumpy() for p in network.get_parameters()}


def test_save_then_load_round_trips_every_tensor_bit_for_bit_in_zoo_layout(tmp_path):
    source = DLinkNet34()
    convention = InputConvention("RGB", 1 / 255, 0.0)
    path = save_checkpoint(source, tmp_path / "model.ckpt", arch="dlinknet34", convention=convention)
    contents = read_checkpoint(path)
    assert contents.tensors["decoder1.deconv3.weight"].shape == (16, 16, 1, 3, 3)
    assert contents.arch == "dlinknet34" and contents.convention == convention
    target = DLinkNet34()
    load_into(target, contents, "dlinknet34")
    before, after = network_arrays(source), network_arrays(target)
    assert before.keys() == after.keys()
    for name in before:
        assert before[name].tobytes() == after[name].tobytes(), name


def test_zoo_checkpoint_loads_and_defaults_to_the_zoo_convention(tmp_path):
    tensors = write_zoo_checkpoint(tmp_path / "zoo.ckpt")
    model = load_model(tmp_path / "zoo.ckpt", device="CPU", runtime=ModelRuntime(engine="mindspore"))
    assert model.arch == "dlinknet34"
    assert model.convention == InputConvention("BGR", 3.2 / 255, -1.6)
    loaded = network_arrays(model.network)
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)


def test_zoo_checkpoint_with_optimizer_state_loads_and_ignores_it(tmp_path):
    tensors = write_zoo_checkpoint(tmp_path / "zoo_opt.ckpt", optimizer=True)
    contents = read_checkpoint(tmp_path / "zoo_opt.ckpt")
    assert "moment1.firstconv.weight" in contents.training_state
    assert set(contents.tensors) == set(tensors)
    model = load_model(tmp_path / "zoo_opt.ckpt", device="CPU", runtime=ModelRuntime(engine="mindspore"))
    np.testing.assert_array_equal(network_arrays(model.network)["finalconv3.bias"], tensors["finalconv3.bias"])


def test_missing_tensor_is_named(tmp_path):
    write_zoo_checkpoint(tmp_path / "missing.ckpt", drop="decoder2.norm1.gamma")
    with pytest.raises(WeightsError, match=r"does not match dlinknet34: 1 missing: decoder2\.norm1\.gamma"):
        load_model(tmp_path / "missing.ckpt", device="CPU")


def test_misshaped_tensor_is_named_with_both_shapes(tmp_path):
    write_zoo_checkpoint(tmp_path / "shape.ckpt", reshape="finalconv2.weight")
    with pytest.raises(WeightsError, match=r"1 mis-shaped: finalconv2\.weight \(32, 32, 3, 4\) != \(32, 32, 3, 3\)"):
        load_model(tmp_path / "shape.ckpt", device="CPU")


def test_wrong_architecture_names_missing_and_extra_tensors(tmp_path):
    write_zoo_checkpoint(tmp_path / "zoo34.ckpt")
    with pytest.raises(WeightsError, match=r"does not match dlinknet50: \d+ missing: .*\(\+\d+ more\); "
                                           r"\d+ not in the network: "):
        load_model(tmp_path / "zoo34.ckpt", arch="dlinknet50", device="CPU")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_unreadable_file_gives_one_line_error(tmp_path, content):
    path = tmp_path / "bad.ckpt"
    if content is None:  # truncated: the first bytes of a real checkpoint
        write_zoo_checkpoint(tmp_path / "good.ckpt")
        content = (tmp_path / "good.ckpt").read_bytes()[:5000]
    path.write_bytes(content)
    with pytest.raises(WeightsError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "empty" in message or "not a readable MindSpore checkpoint" in message


def test_extra_entries_must_be_training_state(tmp_path):
    with pytest.raises(ValueError, match="would be read as a network tensor"):
        save_checkpoint(DLinkNet34(), tmp_path / "x.ckpt", arch="dlinknet34",
                        convention=InputConvention(), extra={"epoch": 3})


def test_training_state_round_trips_beside_the_network(tmp_path):
    path = save_checkpoint(DLinkNet34(), tmp_path / "last.ckpt", arch="dlinknet34",
                           convention=InputConvention(),
                           extra={"roadseg_train_state": '{"epoch": 2}', "global_step": np.int32(7)})
    contents = read_checkpoint(path)
    assert contents.metadata["roadseg_train_state"] == '{"epoch": 2}'
    assert int(contents.training_state["global_step"]) == 7
    assert len(contents.tensors) == 266


def _report_few_free_pages(monkeypatch, pages: int) -> None:
    """Make ``os.sysconf`` say only ``pages`` pages are free, as on a machine whose page cache is full."""
    import os

    real_sysconf = os.sysconf
    monkeypatch.setattr(os, "sysconf", lambda name: pages if name == "SC_AVPHYS_PAGES" else real_sysconf(name))


def test_a_full_page_cache_does_not_stop_a_checkpoint_loading(tmp_path, monkeypatch):
    # MindSpore 2.10 compares the file with the free pages alone; a CI run refused a 500 MB training
    # checkpoint with 24 GB installed. The page cache the kernel would hand back counts as available.
    tensors = write_zoo_checkpoint(tmp_path / "zoo.ckpt")
    _report_few_free_pages(monkeypatch, pages=16)
    contents = read_checkpoint(tmp_path / "zoo.ckpt")
    assert contents.tensors.keys() == tensors.keys()


def test_a_checkpoint_larger_than_the_memory_left_is_refused_by_name(tmp_path, monkeypatch):
    import roadseg.model.checkpoint as checkpoint

    write_zoo_checkpoint(tmp_path / "zoo.ckpt")
    monkeypatch.setattr(checkpoint, "available_memory", lambda: 2**20)
    with pytest.raises(WeightsError) as caught:
        read_checkpoint(tmp_path / "zoo.ckpt")
    message = str(caught.value)
    assert "zoo.ckpt" in message and "only 1 MiB is available" in message and "\n" not in message


def test_training_gsd_is_recorded_and_read_back(tmp_path):
    from roadseg.model.loaded import choose_weights

    convention = InputConvention("RGB", 1 / 255, 0.0)
    recorded = save_checkpoint(DLinkNet34(), tmp_path / "run.ckpt", arch="dlinknet34", convention=convention,
                               gsd=0.3)
    unknown = save_checkpoint(DLinkNet34(), tmp_path / "plain.ckpt", arch="dlinknet34", convention=convention)
    assert read_checkpoint(recorded).gsd == 0.3 and choose_weights(recorded, None).gsd == 0.3
    assert read_checkpoint(unknown).gsd is None and choose_weights(unknown, None).gsd is None


def test_the_published_file_passed_as_a_path_has_the_registry_gsd(tmp_path):
    from roadseg.model.loaded import choose_weights
    from roadseg.model.registry import REGISTRY, ZOO_DLINKNET34_FILENAME

    write_zoo_checkpoint(tmp_path / ZOO_DLINKNET34_FILENAME)
    write_zoo_checkpoint(tmp_path / "renamed.ckpt")
    assert choose_weights(tmp_path / ZOO_DLINKNET34_FILENAME, None).gsd == REGISTRY["dlinknet34-deepglobe"].gsd == 0.5
    assert choose_weights(tmp_path / "renamed.ckpt", None).gsd is None
