"""Unit tests of audio decoding into 16 kHz mono, its errors, and checksum-verified reads."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from suitekit import write_clip

from ahelm.audio import SAMPLE_RATE, decode, to_pcm16, to_wav_bytes
from ahelm.core import AUDIO_PIPELINE_VERSION, AudioClip, AudioError, InstanceError


def sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode(samples: np.ndarray, rate: int, *, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def peak_hz(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


# -- decode ---------------------------------------------------------------------------------------


def test_mono_16k_passes_through() -> None:
    original = sine(440, SAMPLE_RATE)
    data = encode(original, SAMPLE_RATE, subtype="FLOAT")
    samples = decode(data, "a.wav")
    assert samples.dtype == np.float32 and samples.ndim == 1
    np.testing.assert_array_equal(samples, original)


def test_pcm16_is_scaled_to_unit_range() -> None:
    samples = decode(encode(sine(440, SAMPLE_RATE), SAMPLE_RATE), "a.wav")
    assert len(samples) == SAMPLE_RATE
    assert 0.49 < float(np.max(np.abs(samples))) <= 0.5 + 1 / 32768


def test_stereo_is_downmixed_to_the_mean() -> None:
    left = sine(440, SAMPLE_RATE, amplitude=0.4)
    right = sine(1000, SAMPLE_RATE, amplitude=0.2)
    data = encode(np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")
    samples = decode(data, "stereo.wav")
    assert samples.ndim == 1 and len(samples) == SAMPLE_RATE
    np.testing.assert_allclose(samples, (left + right) / 2, atol=1e-6)


def test_opposite_channels_cancel() -> None:
    left = sine(440, SAMPLE_RATE)
    samples = decode(encode(np.stack([left, -left], axis=1), SAMPLE_RATE, subtype="FLOAT"), "x.wav")
    assert float(np.max(np.abs(samples))) < 1e-6


@pytest.mark.parametrize(
    ("rate", "freq"), [(8_000, 1_000.0), (44_100, 440.0), (22_050, 3_000.0), (48_000, 5_000.0)]
)
def test_resampled_to_16k_keeping_the_pitch(rate: int, freq: float) -> None:
    seconds = 0.75
    samples = decode(encode(sine(freq, rate, seconds), rate), f"r{rate}.wav")
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) == int(SAMPLE_RATE * seconds)
    assert peak_hz(samples) == pytest.approx(freq, abs=2.0)
    # the level survives the resampling (away from the filter's edge effects)
    middle = samples[len(samples) // 4 : -len(samples) // 4]
    assert float(np.max(np.abs(middle))) == pytest.approx(0.5, abs=0.03)


def test_stereo_44k_is_downmixed_and_resampled() -> None:
    tone = sine(440, 44_100)
    samples = decode(encode(np.stack([tone, tone], axis=1), 44_100), "s.wav")
    assert len(samples) == SAMPLE_RATE
    assert peak_hz(samples) == pytest.approx(440, abs=2.0)


@pytest.mark.parametrize(
    ("fmt", "subtype"),
    [("WAV", "PCM_U8"), ("WAV", "PCM_24"), ("FLAC", "PCM_24"), ("OGG", "VORBIS")],
)
def test_other_encodings_are_read(fmt: str, subtype: str) -> None:
    assert subtype in sf.available_subtypes(fmt)
    original = sine(440, SAMPLE_RATE)
    samples = decode(encode(original, SAMPLE_RATE, fmt=fmt, subtype=subtype), f"a.{fmt.lower()}")
    assert len(samples) == SAMPLE_RATE
    assert peak_hz(samples) == pytest.approx(440, abs=2.0)
    tolerance = {"PCM_U8": 1 / 64, "PCM_24": 1e-6}.get(subtype)
    if tolerance is not None:
        np.testing.assert_allclose(samples, original, atol=tolerance)


def test_pcm_u8_is_centred() -> None:
    # unsigned 8-bit audio stores silence as 128; decoded it must be (close to) 0
    samples = decode(
        encode(np.zeros(1000, dtype=np.float32), SAMPLE_RATE, subtype="PCM_U8"), "u8.wav"
    )
    assert float(np.max(np.abs(samples))) < 1e-2


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_an_error_naming_the_file(bad: float) -> None:
    samples = sine(440, SAMPLE_RATE)
    samples[123] = bad
    data = encode(samples, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError) as info:
        decode(data, "corpus/bad-nan.wav")
    assert "corpus/bad-nan.wav" in str(info.value)
    assert "NaN or infinite" in str(info.value)
    assert info.value.kind == "audio"
    assert isinstance(info.value, InstanceError)


def test_empty_bytes() -> None:
    with pytest.raises(AudioError, match=r"audio file clips/empty\.wav is empty"):
        decode(b"", "clips/empty.wav")


def test_random_bytes() -> None:
    noise = np.random.default_rng(7).bytes(4000)
    with pytest.raises(AudioError) as info:
        decode(noise, "clips/noise.flac")
    assert str(info.value).startswith("audio file clips/noise.flac cannot be decoded")


def test_text_is_not_audio() -> None:
    with pytest.raises(AudioError, match="clips/readme.wav"):
        decode(b"this is not a wav file at all, just text\n" * 20, "clips/readme.wav")


@pytest.mark.parametrize("keep", [4, 20, 44])
def test_wav_truncated_in_its_header(keep: int) -> None:
    data = encode(sine(440, SAMPLE_RATE), SAMPLE_RATE)
    with pytest.raises(AudioError, match="clips/short.wav"):
        decode(data[:keep], "clips/short.wav")


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.9])
def test_truncated_flac(fraction: float) -> None:
    data = encode(sine(440, SAMPLE_RATE), SAMPLE_RATE, fmt="FLAC")
    with pytest.raises(AudioError, match="clips/cut.flac"):
        decode(data[: int(len(data) * fraction)], "clips/cut.flac")


def test_no_samples() -> None:
    data = encode(np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="audio file clips/zero.wav has no samples"):
        decode(data, "clips/zero.wav")


# -- to_pcm16 / to_wav_bytes ----------------------------------------------------------------------


def test_to_pcm16_clips_and_rounds() -> None:
    pcm = to_pcm16(np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -3.0], dtype=np.float32))
    assert pcm.dtype == np.int16
    assert pcm.tolist() == [0, 16384, -16384, 32767, -32768, 32767, -32768]


def test_wav_bytes_round_trip() -> None:
    original = sine(440, SAMPLE_RATE, seconds=0.5)
    data = to_wav_bytes(original)
    info = sf.info(io.BytesIO(data))
    assert (info.format, info.subtype, info.samplerate, info.channels) == (
        "WAV",
        "PCM_16",
        SAMPLE_RATE,
        1,
    )
    assert info.frames == len(original)
    decoded = decode(data, "round.wav")
    np.testing.assert_allclose(decoded, original, atol=1 / 32767)


def test_pcm16_wav_survives_decode_and_reencode_unchanged() -> None:
    pcm = np.array([0, 1, -1, 16384, 20000, 30000, 32767, -32768, -20000], dtype=np.int16)
    buffer = io.BytesIO()
    sf.write(buffer, pcm, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    source = buffer.getvalue()
    again, _ = sf.read(io.BytesIO(to_wav_bytes(decode(source, "x.wav"))), dtype="int16")
    assert again.tolist() == pcm.tolist()


def test_wav_bytes_other_rate() -> None:
    data = to_wav_bytes(sine(440, 8_000), rate=8_000)
    assert sf.info(io.BytesIO(data)).samplerate == 8_000
    assert len(decode(data, "x.wav")) == SAMPLE_RATE


# -- AudioClip.read_verified ----------------------------------------------------------------------


def test_read_verified(tmp_path: Path) -> None:
    path = tmp_path / "clip.flac"
    digest = write_clip(path, 3)
    clip = AudioClip(path=path, sha256=digest)
    data = clip.read_verified()
    assert data == path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == digest
    assert len(decode(data, str(path))) == 3_200 + 160 * 3


def test_read_verified_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "audio" / "gone.flac"
    with pytest.raises(AudioError) as info:
        AudioClip(path=path, sha256="0" * 64).read_verified()
    assert str(info.value).startswith(f"cannot read audio file {path}: ")
    assert "No such file" in str(info.value)


def test_read_verified_checksum_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "clip.flac"
    digest = write_clip(path, 1)
    path.write_bytes(path.read_bytes()[:-10])
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(AudioError) as info:
        AudioClip(path=path, sha256=digest).read_verified()
    message = str(info.value)
    assert message.startswith(f"audio file {path} does not match its manifest checksum")
    assert digest[:12] in message and actual[:12] in message


def test_read_verified_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=f"cannot read audio file {tmp_path}"):
        AudioClip(path=tmp_path, sha256="0" * 64).read_verified()


def _clip(tmp_path: Path, name: str = "a.flac", freq: float = 440.0) -> AudioClip:
    path = tmp_path / name
    path.write_bytes(encode(sine(freq, 22_050, 0.5), 22_050, fmt="FLAC"))
    return AudioClip(path, hashlib.sha256(path.read_bytes()).hexdigest())


def test_wav_cache_serves_the_decoded_clip_from_disk(tmp_path: Path) -> None:
    """Kept base64-encoded, the form JSON APIs carry: served as is for them, decoded for the
    users of the raw WAV."""
    import base64

    from ahelm.audio import WavCache, model_wav, model_wav_base64, use_wav_cache

    cache = WavCache(tmp_path / "cache", 10**9)
    clip = _clip(tmp_path)
    expected = to_wav_bytes(decode(clip.read_verified(), "a"))
    assert cache.base64(clip) == base64.b64encode(expected)
    assert cache.wav(clip) == expected
    (stored,) = (tmp_path / "cache").glob("*/*")
    assert stored.name == f"{clip.identity}-p{AUDIO_PIPELINE_VERSION}.wav.b64"
    assert stored.read_bytes() == base64.b64encode(expected)
    stored.write_bytes(base64.b64encode(b"RIFF-served-from-the-cache"))
    try:
        use_wav_cache(cache)
        assert model_wav(clip) == b"RIFF-served-from-the-cache"
        assert model_wav_base64(clip) == base64.b64encode(b"RIFF-served-from-the-cache")
        use_wav_cache(None)
        assert model_wav(clip) == expected and model_wav_base64(clip) == base64.b64encode(expected)
    finally:
        use_wav_cache(None)


def test_a_damaged_cache_file_is_rendered_again(tmp_path: Path) -> None:
    import base64

    from ahelm.audio import WavCache

    cache = WavCache(tmp_path / "cache", 10**9)
    clip = _clip(tmp_path)
    expected = cache.wav(clip)
    (stored,) = (tmp_path / "cache").glob("*/*")
    stored.write_bytes(b"not base64 at all!")
    assert cache.wav(clip) == expected
    assert stored.read_bytes() == base64.b64encode(expected)


def test_a_clip_is_cheap_only_once_its_wav_is_cached(tmp_path: Path) -> None:
    """Model adapters build bodies on the event loop only for clips whose WAV is on disk."""
    from ahelm.audio import WavCache, use_wav_cache, wav_is_cheap

    clip = _clip(tmp_path)
    cache = WavCache(tmp_path / "cache", 10**9)
    try:
        use_wav_cache(None)
        assert not wav_is_cheap(clip)
        use_wav_cache(cache)
        assert not cache.holds(clip) and not wav_is_cheap(clip)
        cache.wav(clip)
        assert cache.holds(clip) and wav_is_cheap(clip)
        use_wav_cache(None)
        assert not wav_is_cheap(clip)
    finally:
        use_wav_cache(None)


def test_model_wav_work_leaves_the_event_loop_only_when_the_clip_must_be_decoded(
    tmp_path: Path,
) -> None:
    import asyncio
    import threading

    from ahelm.audio import WavCache, model_wav, use_wav_cache, with_model_wav

    clip = _clip(tmp_path)

    def where() -> tuple[str, bytes]:
        return threading.current_thread().name, model_wav(clip)

    async def run(audio: AudioClip | None) -> tuple[str, bytes]:
        return await with_model_wav(audio, where)

    here = threading.current_thread().name
    try:
        use_wav_cache(WavCache(tmp_path / "cache", 10**9))
        decoded_in, wav = asyncio.run(run(clip))
        assert decoded_in != here
        assert asyncio.run(run(clip)) == (here, wav)  # now cached: read back on the loop
        assert asyncio.run(run(None))[0] == here
    finally:
        use_wav_cache(None)


def test_wav_cache_still_checks_the_source_file(tmp_path: Path) -> None:
    from ahelm.audio import WavCache

    cache = WavCache(tmp_path / "cache", 10**9)
    clip = _clip(tmp_path)
    cache.wav(clip)
    clip.path.write_bytes(clip.path.read_bytes()[:-10])
    with pytest.raises(AudioError, match="does not match its manifest checksum"):
        cache.wav(clip)
    clip.path.unlink()
    with pytest.raises(AudioError, match="cannot read audio file"):
        cache.wav(clip)


def test_wav_cache_trims_the_oldest_files(tmp_path: Path) -> None:
    import os

    from ahelm.audio import WavCache

    cache = WavCache(tmp_path / "cache", 10**9)
    clips = [_clip(tmp_path, f"{n}.flac", 300.0 + 50 * n) for n in range(3)]
    for age, clip in zip((300, 200, 100), clips, strict=True):
        cache.wav(clip)
        stored = next((tmp_path / "cache").glob(f"*/{clip.identity}*.wav.b64"))
        os.utime(stored, (stored.stat().st_atime, stored.stat().st_mtime - age))
    size = next((tmp_path / "cache").glob("*/*.wav.b64")).stat().st_size
    # A file of the earlier layout (plain WAV), older than all: it ages out first.
    old = tmp_path / "cache" / "ff" / "ff00-p1.wav"
    old.parent.mkdir(exist_ok=True)
    old.write_bytes(b"x" * size)
    os.utime(old, (old.stat().st_atime, old.stat().st_mtime - 1000))
    cache.max_bytes = 2 * size
    assert cache.trim() == 2
    left = {p.name.split("-")[0] for p in (tmp_path / "cache").glob("*/*")}
    assert left == {clips[1].identity, clips[2].identity}
