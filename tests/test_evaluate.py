"""evaluate.synthetic_metrics measures what it says: a 'network' answering with the ground truth scores perfectly,
one whose depth is tilted loses coarse accuracy but not its tilt-free shape, and one whose relief is scaled keeps
its shape but not its relief ratio (skipped without ../shared/data)."""
import numpy as np

from facerecon.data.synth.render import Renderer
from facerecon.preprocess.align import FRAMING
from facerecon.preprocess.detect import FaceDetector
from facerecon.training import evaluate


class GroundTruth:
    """Stands in for FaceReconstructor: returns the maps of the sample rendered last, depth tilted by `tilt` and its
    relief scaled by `relief`."""

    def __init__(self, monkeypatch, tilt: float = 0.0, relief: float = 1.0):
        self.tilt, self.relief, self.sample, self.seeds = tilt, relief, None, []
        self.framing = FRAMING  # the renders' crops are framed as a model's of this framing
        self.detector = FaceDetector()  # the real one: MediaPipe's shape is measured on the rendered crops
        render = Renderer.render

        def keep(renderer: Renderer, seed: int):
            self.seeds.append(seed)
            self.sample = render(renderer, seed)
            return self.sample

        monkeypatch.setattr(Renderer, "render", keep)

    def predict(self, images: np.ndarray):
        s = self.sample
        changed = (images[0] != s.image).any(-1).mean()
        assert changed < 0.2  # the rendered crop itself, or it with thin occluders drawn over it
        ramp = self.tilt * np.arange(s.mask.shape[1], dtype=np.float32)[None, :]  # crop px of depth per px
        return s.mask.astype(np.float32)[None], (self.relief * s.coarse + ramp)[None], s.detail[None]


def test_ground_truth_scores_perfectly(monkeypatch, shared_data):
    m = evaluate.synthetic_metrics(GroundTruth(monkeypatch), 3, shared_data)
    assert m["mask_iou"] == 1.0 and m["coarse_mae_mm"] < 1e-4 and m["coarse_mae_without_tilt_mm"] < 1e-4
    assert m["detail_corr"] > 0.9999 and m["detail_corr_thin_occluders"] > 0.9999 and m["normal_error_deg"] < 0.1
    assert m["detail_between_faces_r"] == m["label_detail_between_faces_r"]
    assert abs(m["coarse_relief_ratio"] - 1) < 1e-5
    # MediaPipe on the rendered faces: less than exact, and the 'network' (the truth) agrees with it as much
    assert m["mediapipe_faces"] >= 2 and m["coarse_shape_r"] > 0.9999 and 0.5 < m["mediapipe_shape_r"] < 0.99
    assert abs(m["coarse_shape_r_vs_mediapipe"] - m["mediapipe_shape_r"]) < 1e-4


def test_a_tilted_face_loses_depth_accuracy_but_not_its_shape(monkeypatch, shared_data):
    m = evaluate.synthetic_metrics(GroundTruth(monkeypatch, tilt=0.1), 3, shared_data)
    assert m["coarse_mae_mm"] > 2.0 and m["coarse_mae_without_tilt_mm"] < 1e-3
    # one face's error in crop px is its error in mm times its crop px per mm
    one = evaluate.synthetic_metrics(GroundTruth(monkeypatch, tilt=0.1), 1, shared_data)
    assert 8 < one["crop_px_per_cm"] < 14 and one["coarse_mae_px"] > 1
    assert abs(one["coarse_mae_px"] - one["coarse_mae_mm"] * one["crop_px_per_cm"] / 10) < 1e-6
    assert m["mask_iou"] == 1.0 and m["normal_error_deg"] > 3.0
    assert abs(m["coarse_relief_ratio"] - 1) < 1e-4 and m["coarse_shape_r"] > 0.9999  # a tilt is not relief


def test_a_flattened_face_has_a_relief_ratio_below_one(monkeypatch, shared_data):
    m = evaluate.synthetic_metrics(GroundTruth(monkeypatch, relief=0.8, tilt=0.05), 3, shared_data)
    assert abs(m["coarse_relief_ratio"] - 0.8) < 1e-4 and m["coarse_mae_without_tilt_mm"] > 0.5
    assert m["coarse_shape_r"] > 0.9999  # the same shape, only shallower


def test_the_evaluation_set_is_render_seed_2_unless_another_is_asked_for(monkeypatch, shared_data):
    net = GroundTruth(monkeypatch)
    evaluate.synthetic_metrics(net, 2, shared_data)
    evaluate.synthetic_metrics(net, 2, shared_data, seed=9)
    assert net.seeds == [20_000_000, 20_000_001, 90_000_000, 90_000_001]


def test_detail_is_split_into_quarters_by_the_labels_amplitude():
    label_std = np.array([0.4, 0.1, 0.3, 0.2, 0.8, 0.05, 0.6, 0.15])
    corr = label_std / 2  # deeper wrinkles found better
    m = evaluate.by_amplitude_quarter(corr, np.column_stack([label_std, np.full(8, 0.12)]))  # one predicted depth
    assert np.allclose(m["detail_corr_by_label_amplitude_quarter"], [0.0375, 0.0875, 0.175, 0.35])
    assert np.allclose(m["detail_amplitude_ratio_by_quarter"], [(1.2 + 2.4) / 2, (0.6 + 0.8) / 2, (0.3 + 0.4) / 2,
                                                                (0.15 + 0.2) / 2])


def test_between_faces_r_tells_one_template_from_faces_of_their_own():
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 64), bool)
    mask[8:56, 8:56] = True
    template = rng.normal(size=(64, 64))
    same = [(template + 0.1 * rng.normal(size=(64, 64)), mask) for _ in range(5)]
    own = [(rng.normal(size=(64, 64)), mask) for _ in range(5)]
    assert evaluate.between_faces_r(same) > 0.98 and abs(evaluate.between_faces_r(own)) < 0.05
    shifted = np.zeros((64, 64), bool)
    shifted[40:64, 40:64] = True  # pairs compare only where both masks hold
    assert evaluate.between_faces_r([(template, mask), (template + 5 * ~mask, shifted)]) > 0.9999
