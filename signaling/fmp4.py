"""Fragmented MP4 (CMAF) boxes for H.264 video and Opus audio, written by hand.

``init_segment`` writes ``ftyp`` + ``moov`` (an ``avc1`` track with the ``avcC`` made from
the stream's SPS/PPS, and an ``Opus`` track with its ``dOps``); ``media_segment`` writes one
``moof`` + ``mdat`` holding both tracks' samples. Nothing is decoded or encoded: the
H.264 access units come as Annex B (as aiortc hands them over) and are rewritten with
4-byte lengths (ISO/IEC 14496-15), their SPS, PPS and access unit delimiters left out (they
are in the ``avcC``). Layouts: ISO/IEC 14496-12 (boxes), 14496-15 (avcC), and "Encapsulation
of Opus in ISO Base Media File Format" (dOps).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

VIDEO_TRACK = 1
AUDIO_TRACK = 2
VIDEO_TIMESCALE = 90_000
AUDIO_TIMESCALE = 48_000
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
# trun sample flags: a sync sample depends on nothing; others depend on earlier samples
# and are not sync samples (ISO/IEC 14496-12 8.8.3.1).
SYNC_FLAGS = 0x02000000
NON_SYNC_FLAGS = 0x01010000
HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of a track: its payload, decode time (track timescale) and duration."""

    data: bytes
    time: int
    duration: int
    sync: bool = True


@dataclass(frozen=True, slots=True)
class SpsInfo:
    profile: int
    compatibility: int
    level: int
    chroma_format: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int


def box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *parts)


# -- H.264 --------------------------------------------------------------------------------


def nal_units(annex_b: bytes) -> Iterator[bytes]:
    """The NAL units of an Annex B access unit (start codes of 3 or 4 bytes)."""
    starts: list[int] = []
    pos = annex_b.find(b"\x00\x00\x01")
    while pos != -1:
        starts.append(pos + 3)
        pos = annex_b.find(b"\x00\x00\x01", pos + 3)
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(annex_b)
        nal = annex_b[start:end]
        if i + 1 < len(starts):
            nal = nal.rstrip(b"\x00")  # (the next start code's leading zero byte)
        if nal:
            yield nal


def parameter_sets(annex_b: bytes) -> tuple[bytes | None, bytes | None]:
    """The access unit's first SPS and PPS (None where it has none)."""
    sps = pps = None
    for nal in nal_units(annex_b):
        kind = nal[0] & 0x1F
        if kind == NAL_SPS and sps is None:
            sps = nal
        elif kind == NAL_PPS and pps is None:
            pps = nal
    return sps, pps


def length_prefixed(annex_b: bytes) -> bytes:
    """The access unit as an MP4 sample: 4-byte lengths, without SPS, PPS and AUD."""
    return b"".join(
        struct.pack(">I", len(nal)) + nal
        for nal in nal_units(annex_b)
        if nal[0] & 0x1F not in (NAL_SPS, NAL_PPS, NAL_AUD)
    )


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bit(self) -> int:
        byte = self.data[self.pos >> 3]  # (IndexError past the end: a truncated SPS)
        value = (byte >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _unescape(nal: bytes) -> bytes:
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def parse_sps(sps: bytes) -> SpsInfo:
    """Profile, level and picture size from an SPS NAL unit (ITU-T H.264 7.3.2.1.1)."""
    r = _Bits(_unescape(sps[1:]))
    profile, compatibility, level = r.bits(8), r.bits(8), r.bits(8)
    r.ue()  # seq_parameter_set_id
    chroma, depth_luma, depth_chroma = 1, 8, 8
    if profile in HIGH_PROFILES:
        chroma = r.ue()
        if chroma == 3:
            r.bit()  # separate_colour_plane_flag
        depth_luma, depth_chroma = r.ue() + 8, r.ue() + 8
        r.bit()  # qpprime_y_zero_transform_bypass_flag
        if r.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma != 3 else 12):
                if r.bit():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.bit()
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs, height_units = r.ue() + 1, r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()  # mb_adaptive_frame_field_flag
    r.bit()  # direct_8x8_inference_flag
    crop = (r.ue(), r.ue(), r.ue(), r.ue()) if r.bit() else (0, 0, 0, 0)
    unit_x = 1 if chroma in (0, 3) else 2
    unit_y = (2 - frame_mbs_only) * (2 if chroma == 1 else 1)
    width = width_mbs * 16 - unit_x * (crop[0] + crop[1])
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (crop[2] + crop[3])
    return SpsInfo(profile, compatibility, level, chroma, depth_luma, depth_chroma, width, height)


def _skip_scaling_list(r: _Bits, size: int) -> None:
    last = following = 8
    for _ in range(size):
        if following:
            following = (last + r.se() + 256) % 256
        last = following or last


def avcc(sps: bytes, pps: bytes) -> bytes:
    info = parse_sps(sps)
    body = bytes([1, info.profile, info.compatibility, info.level, 0xFF, 0xE1])
    body += struct.pack(">H", len(sps)) + sps + b"\x01" + struct.pack(">H", len(pps)) + pps
    if info.profile in HIGH_PROFILES:
        body += bytes(
            [
                0xFC | info.chroma_format,
                0xF8 | (info.bit_depth_luma - 8),
                0xF8 | (info.bit_depth_chroma - 8),
                0,
            ]
        )
    return box(b"avcC", body)


# -- Opus ---------------------------------------------------------------------------------


def opus_duration(packet: bytes) -> int:
    """The packet's duration in 48 kHz samples, from its TOC byte (RFC 6716 3.1)."""
    if not packet:
        return 0
    config, code = packet[0] >> 3, packet[0] & 0x03
    if config < 12:
        tenths = (100, 200, 400, 600)[config % 4]
    elif config < 16:
        tenths = (100, 200)[config % 2]
    else:
        tenths = (25, 50, 100, 200)[config % 4]
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        frames = packet[1] & 0x3F if len(packet) > 1 else 1
    return 48 * tenths * frames // 10


# -- init segment -------------------------------------------------------------------------


def init_segment(sps: bytes, pps: bytes, audio: bool = True) -> bytes:
    """ftyp + moov for one H.264 track (1/90000) and, with ``audio``, one Opus track
    (1/48000, stereo). (A declared track without samples stalls a browser's playback:
    media source buffers play where every track has data.)"""
    info = parse_sps(sps)
    ftyp = box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6cmfcisommp41")
    mvhd = full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, 1000, 0),
        struct.pack(">IH", 0x00010000, 0x0100),
        bytes(10),
        _MATRIX,
        bytes(24),
        struct.pack(">I", AUDIO_TRACK + 1),
    )
    avc1 = box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),
        bytes(16),
        struct.pack(">HH", info.width, info.height),
        struct.pack(">II", 0x00480000, 0x00480000),
        bytes(4),
        struct.pack(">H", 1),
        bytes(32),
        struct.pack(">Hh", 0x0018, -1),
        avcc(sps, pps),
    )
    dops = box(b"dOps", struct.pack(">BBHIhB", 0, 2, 0, AUDIO_TIMESCALE, 0, 0))
    opus = box(
        b"Opus",
        bytes(6),
        struct.pack(">H", 1),
        bytes(8),
        struct.pack(">HHHH", 2, 16, 0, 0),
        struct.pack(">I", AUDIO_TIMESCALE << 16),
        dops,
    )
    video = _trak(VIDEO_TRACK, VIDEO_TIMESCALE, b"vide", avc1, info.width, info.height)
    if not audio:
        return ftyp + box(b"moov", mvhd, video, box(b"mvex", _trex(VIDEO_TRACK)))
    sound = _trak(AUDIO_TRACK, AUDIO_TIMESCALE, b"soun", opus, 0, 0)
    mvex = box(b"mvex", _trex(VIDEO_TRACK), _trex(AUDIO_TRACK))
    return ftyp + box(b"moov", mvhd, video, sound, mvex)


def _trak(
    track: int, timescale: int, handler: bytes, entry: bytes, width: int, height: int
) -> bytes:
    volume = 0x0100 if handler == b"soun" else 0
    tkhd = full_box(
        b"tkhd",
        0,
        3,  # enabled, in the movie
        struct.pack(">IIIII", 0, 0, track, 0, 0),
        bytes(8),
        struct.pack(">hhHH", 0, 0, volume, 0),
        _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, 0, 0x55C4, 0))
    name = b"VideoHandler\x00" if handler == b"vide" else b"SoundHandler\x00"
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I", 0), handler, bytes(12), name)
    media_header = (
        full_box(b"vmhd", 0, 1, bytes(8))
        if handler == b"vide"
        else full_box(b"smhd", 0, 0, bytes(4))
    )
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), entry),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = box(b"minf", media_header, dinf, stbl)
    return box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))


def _trex(track: int) -> bytes:
    return full_box(b"trex", 0, 0, struct.pack(">IIIII", track, 1, 0, 0, 0))


# -- media segment ------------------------------------------------------------------------


def media_segment(sequence: int, video: Sequence[Sample], audio: Sequence[Sample]) -> bytes:
    """moof + mdat: the video samples, then the audio samples (a track with none is left
    out). ``sequence`` is the fragment's sequence number (mfhd)."""
    tracks = [(VIDEO_TRACK, video, True), (AUDIO_TRACK, audio, False)]
    tracks = [t for t in tracks if t[1]]

    def moof(offsets: list[int]) -> bytes:
        trafs = [
            _traf(track, samples, offset, flags)
            for (track, samples, flags), offset in zip(tracks, offsets, strict=True)
        ]
        return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)), *trafs)

    size = len(moof([0] * len(tracks)))
    offsets, offset = [], size + 8
    for _, samples, _ in tracks:
        offsets.append(offset)
        offset += sum(len(s.data) for s in samples)
    payload = b"".join(s.data for _, samples, _ in tracks for s in samples)
    return moof(offsets) + box(b"mdat", payload)


def _traf(track: int, samples: Sequence[Sample], data_offset: int, with_flags: bool) -> bytes:
    tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack(">I", track))  # default-base-is-moof
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", samples[0].time))
    flags = 0x000001 | 0x000100 | 0x000200 | (0x000400 if with_flags else 0)
    rows = b"".join(
        struct.pack(">II", s.duration, len(s.data))
        + (struct.pack(">I", SYNC_FLAGS if s.sync else NON_SYNC_FLAGS) if with_flags else b"")
        for s in samples
    )
    trun = full_box(b"trun", 0, flags, struct.pack(">Ii", len(samples), data_offset), rows)
    return box(b"traf", tfhd, tfdt, trun)
