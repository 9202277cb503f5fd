"""Selective decoding policies, stream windows and the nearest-in-time CIDEr protocol."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from vljepa.decoding.selective import (
    DecodeEvent,
    TimedCaption,
    caption_events,
    decodes_per_second,
    drift_events,
    uniform_events,
    ward_events,
    ward_segments,
)
from vljepa.decoding.stream_scoring import (
    SweepPoint,
    nearest_in_time_pairs,
    oracle_stream_embeddings,
    rate_to_reach,
    reduction_at_matched_cider,
    stream_cider,
    window_timestamps,
)
from vljepa.decoding.windows import montage, stream_window_images, window_event_captions


def planted_stream(lengths, *, dim=24, noise=0.15, seed=0) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Piecewise-constant embeddings (one random direction per segment) plus noise; 4 frames per second."""
    generator = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(len(lengths), dim, generator=generator), dim=-1)
    rows = torch.cat([c.expand(n, dim) for c, n in zip(centres, lengths)])
    rows = rows + noise * torch.randn(rows.shape, generator=generator) / dim**0.5
    boundaries = torch.tensor(lengths).cumsum(0)[:-1].tolist()
    return rows, torch.arange(rows.shape[0]) / 4.0, boundaries


@pytest.mark.parametrize("lengths", [[10, 25, 7, 18, 40], [5, 5, 5], [30, 3, 30]])
def test_ward_finds_planted_change_points(lengths):
    embeddings, _, boundaries = planted_stream(lengths)
    segments = ward_segments(embeddings, num_segments=len(lengths))
    assert [start for start, _ in segments[1:]] == boundaries
    assert segments[0][0] == 0 and segments[-1][1] == embeddings.shape[0]


@pytest.mark.parametrize("num_segments", [1, 2, 7, 19, 60, 500])
def test_ward_segments_are_contiguous_and_cover_the_stream(num_segments):
    # A stream that returns to an earlier embedding: unconstrained clustering would join the two visits.
    embeddings, _, _ = planted_stream([20, 20, 20], seed=3)
    embeddings[40:] = embeddings[:20]
    segments = ward_segments(embeddings, num_segments=num_segments)
    assert len(segments) == min(num_segments, 60)
    assert all(a < b for a, b in segments)
    assert [b for _, b in segments[:-1]] == [a for a, _ in segments[1:]]
    assert segments[0][0] == 0 and segments[-1][1] == 60


@pytest.mark.parametrize("representative", ["mean", "medoid"])
def test_ward_events_decode_each_segment_at_its_centre(representative):
    embeddings, times, _ = planted_stream([8, 12])
    events = ward_events(embeddings, times, num_segments=2, representative=representative)
    assert [e.time for e in events] == pytest.approx([times[:8].mean().item(), times[8:].mean().item()])
    assert (events[0].start, events[0].end, events[1].start) == (0.0, 7 / 4, 2.0)
    if representative == "medoid":  # a member of its segment, not an average
        assert any(torch.equal(events[1].embedding, row) for row in embeddings[8:])
    else:
        assert torch.allclose(events[1].embedding, embeddings[8:].mean(0))


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.8])
def test_drift_policy_honours_the_threshold(threshold):
    embeddings, times, boundaries = planted_stream([12, 12, 12, 12], noise=0.05)
    events = drift_events(embeddings, times, threshold=threshold)
    assert events[0].time == 0.0
    last = embeddings[0]
    for t in range(1, embeddings.shape[0]):
        distance = 1 - F.cosine_similarity(embeddings[t], last, dim=0).item()
        decoded = any(e.time == times[t].item() for e in events)
        assert decoded == (distance > threshold)
        if decoded:
            last = embeddings[t]
    if threshold == 0.3:  # random unit directions are ~orthogonal: exactly the planted changes trigger
        assert [int(e.time * 4) for e in events[1:]] == boundaries


@pytest.mark.parametrize("max_gap_s", [1.0, 2.5])
def test_drift_policy_honours_the_maximum_gap(max_gap_s):
    embeddings = torch.ones(40, 8)  # never drifts
    times = torch.arange(40) / 4.0
    events = drift_events(embeddings, times, threshold=0.1, max_gap_s=max_gap_s)
    gaps = torch.diff(torch.tensor([e.time for e in events]))
    assert torch.all(gaps <= max_gap_s + 1e-9)
    assert len(events) == 1 + int(9.75 // max_gap_s)
    assert len(drift_events(embeddings, times, threshold=0.1)) == 1


def test_drift_smoothing_suppresses_single_frame_spikes():
    embeddings = torch.ones(20, 8)
    embeddings[10] = -1.0  # one outlier frame
    times = torch.arange(20) / 4.0
    assert len(drift_events(embeddings, times, threshold=0.5)) == 3
    assert len(drift_events(embeddings, times, threshold=0.5, smoothing_frames=4)) == 1


@pytest.mark.parametrize(("rate_hz", "expected"), [(1.0, 10), (0.5, 5), (2.0, 20), (4.0, 40), (0.3, 3)])
def test_uniform_policy_rate(rate_hz, expected):
    embeddings = torch.randn(40, 8)
    times = torch.arange(40) / 4.0  # 0 .. 9.75 s
    events = uniform_events(embeddings, times, rate_hz=rate_hz)
    assert len(events) == expected
    assert [b.time - a.time for a, b in itertools.pairwise(events)] == pytest.approx([1 / rate_hz] * (expected - 1))
    for event in events:  # the latest frame at or before the decode time
        index = int(event.time * 4 + 1e-9)
        assert torch.equal(event.embedding, embeddings[index])
    assert decodes_per_second(events, 10.0) == pytest.approx(expected / 10.0)


def test_uniform_window_mean_pools_around_the_decode_time():
    embeddings = torch.arange(8, dtype=torch.float32).unsqueeze(1).repeat(1, 4)
    events = uniform_events(embeddings, torch.arange(8) / 4.0, rate_hz=1.0, pooling="window_mean")
    assert [e.time for e in events] == [0.0, 1.0]
    assert events[1].embedding[0].item() == pytest.approx((2 + 3 + 4 + 5 + 6) / 5)  # |t - 1 s| <= 0.5 s


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e, t: uniform_events(e, t, rate_hz=0), "rate_hz"),
        (lambda e, t: uniform_events(e, t.flip(0), rate_hz=1), "strictly increasing"),
        (lambda e, t: drift_events(e, t, threshold=3), "threshold"),
        (lambda e, t: ward_events(e, t[:-1], num_segments=2), "timestamps must have shape"),
        (lambda e, t: ward_events(e, t, num_segments=0), "num_segments"),
    ],
)
def test_policies_reject_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.randn(6, 4), torch.arange(6) / 2.0)


def test_caption_events_decodes_in_one_batch():
    calls = []

    def decode(batch):
        calls.append(batch.shape)
        return [f"text {i}" for i in range(batch.shape[0])]

    events = [DecodeEvent(time=float(i), embedding=torch.zeros(3), start=float(i), end=float(i)) for i in range(4)]
    captions = caption_events(decode, events)
    assert calls == [torch.Size([4, 3])]
    assert [(c.time, c.text) for c in captions] == [(0.0, "text 0"), (1.0, "text 1"), (2.0, "text 2"), (3.0, "text 3")]


def test_nearest_in_time_protocol_on_a_hand_example():
    annotations = {
        "s0": [{"start": 0.0, "end": 2.0, "text": "a red circle appears"},      # midpoint 1.0
               {"start": 4.0, "end": 8.0, "text": "the red circle moves left"}],  # midpoint 6.0
        "s1": [{"start": 1.0, "end": 2.0, "text": "a blue star appears"}],       # midpoint 1.5
    }
    captions = {
        "s0": [TimedCaption(0.2, "a red circle appears", 0, 0), TimedCaption(5.0, "the red circle moves right", 0, 0),
               TimedCaption(7.5, "the red circle moves left", 0, 0)],
        "s1": [TimedCaption(1.0, "a blue star appears", 0, 0), TimedCaption(2.0, "nothing happens", 0, 0)],
    }
    candidates, references = nearest_in_time_pairs(captions, annotations)
    # s0/1: 5.0 is 1 s away, 7.5 is 1.5 s away; s1/0: a tie (0.5 s each) goes to the earlier caption.
    assert candidates == {("s0", 0): "a red circle appears", ("s0", 1): "the red circle moves right",
                          ("s1", 0): "a blue star appears"}
    assert references[("s0", 1)] == ["the red circle moves left"]
    perfect = {k: [TimedCaption((a["start"] + a["end"]) / 2, a["text"], 0, 0) for a in v] for k, v in annotations.items()}
    assert stream_cider(perfect, annotations) > stream_cider(captions, annotations) > 0
    with pytest.raises(ValueError, match="no decoded caption"):
        nearest_in_time_pairs({"s0": []}, annotations)


def point(policy, rate, cider) -> SweepPoint:
    return SweepPoint(policy=policy, label=f"{policy}{rate}", value=rate, decodes_per_second=rate, cider=cider,
                      num_decodes=0)


def test_reduction_at_matched_cider():
    uniform = [point("uniform", r, c) for r, c in [(0.25, 1.0), (0.5, 2.0), (1.0, 3.0), (2.0, 3.2)]]
    selective = [point("ward", r, c) for r, c in [(0.1, 1.5), (0.2, 2.5), (0.4, 3.5)]]
    match = reduction_at_matched_cider(uniform, selective, baseline_rate=1.0)
    # CIDEr 3.0 is reached halfway (in log rate) between 0.2 and 0.4 Hz: sqrt(0.08) Hz.
    assert match["selective_rate"] == pytest.approx(0.08**0.5)
    assert match["reduction"] == pytest.approx(1 / 0.08**0.5)
    assert match["lower_bound"] is False
    assert rate_to_reach(selective, 9.0) is None
    assert reduction_at_matched_cider(uniform, selective, baseline_rate=8.0)["reduction"] is None
    assert reduction_at_matched_cider(uniform, [point("ward", 0.1, 5.0), point("ward", 0.2, 6.0)],
                                      baseline_rate=1.0)["lower_bound"] is True


def test_window_timestamps_are_window_centres():
    assert window_timestamps(4, 2.0).tolist() == [0.25, 0.75, 1.25, 1.75]
    assert window_timestamps(4, 2.0, window_frames=3).tolist() == [0.25, 0.5, 0.75, 1.25]


def test_montage_and_window_images():
    frames = [Image.new("RGB", (8, 6), (i * 40, 0, 0)) for i in range(5)]
    tiled = montage(frames[:4])
    assert tiled.size == (16, 12)
    assert tiled.getpixel((9, 7)) == (120, 0, 0)  # fourth frame bottom-right
    windows = stream_window_images(frames, window_frames=4)
    assert len(windows) == 5 and windows[0].getpixel((9, 7)) == (0, 0, 0)  # start padded with frame 0
    assert windows[4].getpixel((0, 0)) == (40, 0, 0) and windows[4].getpixel((9, 7)) == (160, 0, 0)
    assert stream_window_images(frames, window_frames=1) == frames


def test_window_event_captions_follow_what_the_window_shows():
    events = [{"kind": "appear", "start_frame": 0, "end_frame": 8}, {"kind": "move", "start_frame": 10, "end_frame": 14}]
    annotations = [{"start": 0.0, "end": 2.0, "text": "a red circle appears"},
                   {"start": 2.5, "end": 3.5, "text": "the red circle moves up"}]
    captions = window_event_captions(events, annotations, num_frames=16, window_frames=3, idle_text="idle")
    # The circle appears at frame 4: windows ending at 4, 5 (starting at 2, 3) span the change.
    assert captions[:8] == ["idle"] * 4 + ["a red circle appears"] * 2 + ["idle"] * 2
    # The move covers frames 10..13: windows holding two of them end at 11..14 (window [12, 14] too).
    assert captions[10:16] == ["idle", "the red circle moves up", "the red circle moves up",
                               "the red circle moves up", "the red circle moves up", "idle"]


def test_oracle_embeddings_follow_the_annotations():
    def embed(texts):
        return torch.stack([torch.eye(4)[len(text) % 4] for text in texts])

    stream = oracle_stream_embeddings(
        embed, stream_id="s", num_frames=8, fps=2.0, annotations=[{"start": 1.0, "end": 2.0, "text": "abc"}],
        idle_text="idle", noise_std=0.0, generator=torch.Generator(),
    )
    assert stream.duration_s == 4.0
    assert stream.embeddings[:, 3].tolist() == [0, 0, 1, 1, 0, 0, 0, 0]  # frames centred in [1, 2) s


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"embedding_source": "model"}, "needs --model"),
        ({"tuning_seed": 3, "test_seed": 3}, "must differ"),
        ({"uniform_rates": [0.5]}, "at least two values"),
        ({"baseline_rate": 8.0}, "within uniform_rates"),
        ({"match_tolerance": 1.0}, "match_tolerance"),
    ],
)
def test_benchmark_arguments_are_validated(overrides, message):
    from vljepa.decoding.benchmark import DecodingBenchmarkArguments

    values = {"embedding_source": "oracle", "decoder": "d", **overrides}
    with pytest.raises(ValueError, match=message):
        DecodingBenchmarkArguments(**values)
