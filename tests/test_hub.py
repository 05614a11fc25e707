import dataclasses
import json
import logging

import pytest
import torch

from facerecon.errors import ModelFileError
from facerecon.model import FaceReconNet, NetworkConfig, hub
from facerecon.model.hub import load_pretrained, resolve_weights, save_pretrained

from .hub_server import HubServer

TINY = NetworkConfig(backbone_widths=[8, 8, 16, 16, 16], fpn_width=8, ppm_width=8, coarse_widths=[8] * 6,
                     detail_widths=[8] * 7)


def tiny_model(seed: int) -> FaceReconNet:
    torch.manual_seed(seed)
    return FaceReconNet(TINY).eval()


def folder_files(folder) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ("config.json", "model.safetensors", "README.md")}


@pytest.fixture()
def hub_env(tmp_path, monkeypatch):
    """A local hub with repo acme/face (two commits on main) and an isolated cache; bundled weights in tmp."""
    bundled = save_pretrained(tiny_model(0), tmp_path / "bundled")
    monkeypatch.setattr(hub, "BUNDLED_WEIGHTS", bundled)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with HubServer() as server:
        v1 = server.add_commit("acme/face", folder_files(save_pretrained(tiny_model(1), tmp_path / "v1")))
        v2 = server.add_commit("acme/face", folder_files(save_pretrained(tiny_model(2), tmp_path / "v2")))
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server, v1, v2, tmp_path


def same_weights(a: FaceReconNet, b: FaceReconNet) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_local_folder_round_trip(tmp_path):
    model = tiny_model(3)
    folder = save_pretrained(model, tmp_path / "m", dtype_name="float32")
    assert json.loads((folder / "config.json").read_text())["torch_dtype"] == "float32"
    assert "library_name: facerecon" in (folder / "README.md").read_text()
    loaded = load_pretrained(folder)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(x), loaded(x)))


def test_downloads_from_the_hub_and_pins_revisions(hub_env):
    server, v1, v2, tmp = hub_env
    latest = load_pretrained("acme/face")
    pinned = load_pretrained("acme/face", revision=v1)
    assert same_weights(latest, load_pretrained(tmp / "v2"))
    assert same_weights(pinned, load_pretrained(tmp / "v1"))
    assert any(f"/resolve/{v1}/model.safetensors" in r for r in server.requests)
    assert resolve_weights("acme/face", revision=v1).name == v1  # the HF cache's snapshot folder


def test_an_int8_model_in_the_repo_comes_with_the_weights(hub_env):
    server, v1, v2, tmp = hub_env
    assert not (resolve_weights("acme/face") / "model_int8.onnx").exists()  # none in the repo: no error
    server.add_commit("acme/face", {**folder_files(tmp / "v2"), "model_int8.onnx": b"int8 bytes"})
    assert (resolve_weights("acme/face") / "model_int8.onnx").read_bytes() == b"int8 bytes"


def test_offline_mode_uses_the_cache_and_makes_no_request(hub_env, monkeypatch):
    server, v1, v2, tmp = hub_env
    load_pretrained("acme/face")
    server.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert same_weights(load_pretrained("acme/face"), load_pretrained(tmp / "v2"))
    assert server.requests == []


def test_unreachable_hub_falls_back_to_bundled_weights_at_once_with_one_log_line(hub_env, monkeypatch, caplog):
    """No retries with backoff first (huggingface_hub's own, about 23 s, when nothing is cached)."""
    import time

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    waits = []
    monkeypatch.setattr(time, "sleep", waits.append)
    with caplog.at_level(logging.WARNING, logger="facerecon"):
        model = load_pretrained("acme/face")
    assert same_weights(model, load_pretrained(hub.BUNDLED_WEIGHTS))
    lines = [r.getMessage() for r in caplog.records if r.name == "facerecon"]
    assert len(lines) == 1 and "bundled weights" in lines[0] and "unreachable" in lines[0]
    assert waits == []


def test_offline_with_empty_cache_falls_back(hub_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_weights("acme/face") == hub.BUNDLED_WEIGHTS


def test_missing_repo_or_revision_is_an_error_for_an_explicit_id(hub_env):
    with pytest.raises(ModelFileError, match="acme/other"):
        resolve_weights("acme/other")
    with pytest.raises(ModelFileError, match="RevisionNotFound"):
        resolve_weights("acme/face", revision="0" * 40)


def test_default_model_falls_back_when_not_published(hub_env, monkeypatch):
    monkeypatch.setenv("FACERECON_MODEL", "acme/unpublished")
    assert resolve_weights(None) == hub.BUNDLED_WEIGHTS


def test_local_path_that_is_not_a_folder(tmp_path):
    with pytest.raises(ModelFileError, match="not a model folder"):
        resolve_weights(tmp_path / "missing")


@pytest.fixture()
def saved(tmp_path):
    return save_pretrained(tiny_model(4), tmp_path / "m")


def test_truncated_weights_name_the_file(saved):
    path = saved / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ModelFileError, match="model.safetensors.*(corrupt or truncated|damaged)"):
        load_pretrained(saved)


def test_garbage_weights_name_the_file(saved):
    (saved / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="model.safetensors"):
        load_pretrained(saved)


def test_bad_config_names_the_file(saved):
    (saved / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="config.json"):
        load_pretrained(saved)
    (saved / "config.json").write_text(json.dumps({"fpn_width": 8, "bogus": 1}))
    with pytest.raises(ModelFileError, match="bogus"):
        load_pretrained(saved)
    (saved / "config.json").write_text(json.dumps({"fpn_width": 8, "crop_framing": [1, 1, 1, 0, 1]}))
    with pytest.raises(ModelFileError, match="crop_framing"):
        load_pretrained(saved)


def test_a_model_is_run_on_crops_framed_as_its_config_says(tmp_path):
    from facerecon.predictor import FaceReconstructor
    from facerecon.preprocess.align import SMILE_STEADY_FRAMING, TEMPLATE_FRAMING

    old = save_pretrained(tiny_model(4), tmp_path / "old")
    config = json.loads((old / "config.json").read_text())
    del config["crop_framing"]  # written before the framing was kept: trained on the template framing
    (old / "config.json").write_text(json.dumps(config))
    steady = dataclasses.replace(TINY, crop_framing=SMILE_STEADY_FRAMING.to_list())  # TINY itself is shared
    new = save_pretrained(FaceReconNet(steady).eval(), tmp_path / "new")
    assert FaceReconstructor.from_pretrained(old, backend="torch").framing == TEMPLATE_FRAMING
    assert FaceReconstructor.from_pretrained(new, backend="torch").framing == SMILE_STEADY_FRAMING


def test_mismatched_weights_name_the_tensor(saved):
    config = json.loads((saved / "config.json").read_text())
    config["fpn_width"] = 16
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=r"model.safetensors: tensor fpn\..* has shape"):
        load_pretrained(saved)


def test_dtype_must_match_the_config(saved):
    config = json.loads((saved / "config.json").read_text())
    config["torch_dtype"] = "float32"
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="config.json says"):
        load_pretrained(saved)


def test_non_finite_weights_are_refused(tmp_path):
    model = tiny_model(5)
    with torch.no_grad():
        model.fpn.lateral[0].weight[0, 0, 0, 0] = float("nan")
    folder = save_pretrained(model, tmp_path / "nan")
    with pytest.raises(ModelFileError, match="NaN"):
        load_pretrained(folder)
