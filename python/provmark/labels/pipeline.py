"""One call to label a file and one to verify it: explicit label + watermark + metadata + signature + ledger.

``label_file(IN, OUT, ...)``: decide what is due (:class:`Policy`), burn in the explicit label, embed the
watermark payload derived from the label (:func:`derive_payload`), encode, write the signed ``AIGC`` metadata
into the container and log a ledger record. ``verify(FILE, ...)`` cross-checks metadata, signature, watermark
and ledger and gives a verdict (LABELING.md section 9 vocabulary):

- ``intact``: a well-formed label whose checks all agree;
- ``stripped``: no metadata label, but the watermark is there (the label was removed);
- ``forged``: a label that is malformed/duplicated, or whose signature, watermark or ledger record disagree;
- ``none``: neither a label nor a watermark.

Supported here: images (JPEG, PNG, WebP), audio files (WAV, FLAC, MP3, Ogg, M4A) and video files (MP4, MOV,
MKV, WebM: one transcode puts the explicit label on the frames of the first 2 s and the watermark on every
frame and on the audio). Text goes through :func:`label_text`.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import same_file
from .binding import derive_payload_bytes
from .elements import DEFAULT_WORDING
from .errors import AigcFormatError, LabelError, UnsupportedFormatError
from .metadata import AigcLabel, _riff, detect_format, read_locations, write_label
from .policy import ContentType, LabelKind, Policy, Requirements
from .signing import SignatureCheck, SignatureStatus, SigningKey, load_public_keys, sign_label, verify_label

__all__ = ["LabelResult", "VerifyReport", "content_type_of", "label_file", "verify"]

_IMAGE_FORMATS = ("jpeg", "png", "webp")
_AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg")
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
VERDICTS = ("intact", "stripped", "forged", "none")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_type_of(path: str | os.PathLike) -> tuple[str, ContentType]:
    """(container format, content type) of a file, from its bytes."""
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(64)
    fmt = detect_format(head, str(p))
    if fmt in _IMAGE_FORMATS or fmt == "heif":
        return fmt, ContentType.IMAGE
    if fmt in _AUDIO_FORMATS:
        return fmt, ContentType.AUDIO
    if fmt in ("mp4", "mkv"):
        import av

        try:
            with av.open(str(p)) as c:
                has_video = any(s.type == "video" for s in c.streams)
        except av.error.FFmpegError as exc:
            raise LabelError(f"{str(p)!r} is not a decodable media file: {exc}") from None
        return fmt, (ContentType.VIDEO if has_video else ContentType.AUDIO)
    raise UnsupportedFormatError(f"{str(p)!r}: unsupported format {fmt}")


def _engine(modality: str):
    """The watermark engine module (provmark.image / provmark.audio), with a clear error if it is missing."""
    import importlib

    try:
        mod = importlib.import_module(f"provmark.{modality}")
    except ImportError as exc:
        raise LabelError(f"the {modality} watermark engine (provmark.{modality}) is not available: {exc}") from None
    if not (hasattr(mod, "embed") and hasattr(mod, "detect")):
        raise LabelError(f"provmark.{modality} has no embed/detect functions in this build")
    return mod


@dataclass(frozen=True)
class LabelResult:
    """What :func:`label_file` did."""

    output: Path
    content_type: ContentType
    requirements: Requirements
    applied: tuple[str, ...]  #: label kinds applied, e.g. ("explicit", "watermark", "metadata")
    label: AigcLabel
    payload_hex: str
    explicit_variant: str
    explicit_position: str
    file_sha256: str
    ledger_seq: int | None = None


def label_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    key: Any,
    producer: str,
    service: str,
    produce_id: str | None = None,
    signing_key: SigningKey | str | os.PathLike | None = None,
    ledger: Any = None,
    explicit: bool = True,
    account: str = "",
    unlabeled_recipient: str | None = None,
    biometric_edit: bool = False,
    consent_ref: str | None = None,
    wording: str = DEFAULT_WORDING,
    position: str | None = None,
    strength: float | None = None,
) -> LabelResult:
    """Label ``src`` into ``dst`` (never the same file). See the module docstring.

    ``key``: the watermark key (provmark.Key or its 32 secret bytes). ``signing_key``: Ed25519 key (object or
    PEM path) whose signature goes into ``ReservedCode1``. ``ledger``: a :class:`provmark.ledger.Ledger` or a
    path. ``explicit=False`` for a service within DSP Art. 17(1) is an unlabeled copy: it needs
    ``unlabeled_recipient`` (Measures Art. 9), which is logged in the ledger.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"input file {str(src)!r} does not exist")
    if dst.exists() and same_file(src, dst):
        raise ValueError(f"output {str(dst)!r} is the input file; refusing to overwrite an input")
    fmt, ctype = content_type_of(src)
    if fmt not in (*_IMAGE_FORMATS, *_AUDIO_FORMATS, "mp4", "mkv"):
        raise UnsupportedFormatError(
            f"label_file handles JPEG/PNG/WebP images, audio and MP4/MOV/MKV/WebM video; {str(src)!r} is {fmt}"
        )
    policy = Policy(
        producer,
        service,
        unlabeled_copy_recipient=unlabeled_recipient,
        biometric_edit=biometric_edit,
        consent_ref=consent_ref,
    )
    req = policy.requirements(ctype)
    if not explicit and LabelKind.EXPLICIT in req.due:
        raise LabelError(
            f"service {policy.service_type.value!r} owes an explicit label (Measures Art. 4); an "
            "unlabeled copy needs unlabeled_recipient= (CLI: --recipient ACCOUNT; Measures Art. 9)"
        )
    do_explicit = explicit and LabelKind.EXPLICIT in req.applied
    produce_id = produce_id or uuid.uuid4().hex
    payload = derive_payload_bytes(key, producer, produce_id)
    if isinstance(signing_key, (str, os.PathLike)):
        signing_key = SigningKey.load(signing_key)
    label = AigcLabel.first_write(producer, produce_id)
    if signing_key is not None:
        label = sign_label(label, payload, signing_key)
    from ..payload import Payload

    pl = Payload(payload)
    applied = []
    fd, name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".media" + src.suffix.lower(), dir=dst.parent)
    os.close(fd)
    tmp = Path(name)
    final = tmp.with_name(tmp.name.replace(".media", ".final"))
    try:
        if ctype is ContentType.IMAGE:
            variant, pos = _image_media(
                src, tmp, fmt, pl, key, do_explicit, wording, position or "bottom-right", strength
            )
        elif ctype is ContentType.VIDEO:
            variant, pos = _video_media(src, tmp, pl, key, do_explicit, wording, position or "bottom-right", strength)
        else:
            variant, pos = _audio_media(src, tmp, pl, key, do_explicit, position or "start", strength)
        applied += (["explicit"] if do_explicit else []) + ["watermark"]
        write_label(tmp, final, label)  # reads the metadata back before it returns
        applied.append("metadata")
        digest = _sha256(final)
        seq = None
        if ledger is not None:  # logged before the output appears: no labeled file without its record
            from ..ledger import LedgerRecord

            record = LedgerRecord(
                payload=payload,
                produce_id=produce_id,
                provider_code=producer,
                service_type=policy.service_type.value,
                content_type=ctype.value,
                label=label.label,
                key_id=_key_id(key),
                signing_key_id=signing_key.key_id if signing_key is not None else "",
                explicit_variant=variant,
                explicit_position=pos,
                file_sha256=digest,
                account=account,
                unlabeled_recipient=unlabeled_recipient or "",
                extra={"consent_ref": consent_ref} if consent_ref else {},
            )
            seq = _append(ledger, record)
        os.replace(final, dst)
    finally:
        tmp.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
    return LabelResult(dst, ctype, req, tuple(applied), label, payload.hex(), variant, pos, digest, seq)


def _append(ledger, record) -> int:
    """Append to a Ledger object, or to the ledger at a path (opened and closed here)."""
    from ..ledger import Ledger, open_ledger

    led = ledger if isinstance(ledger, Ledger) else open_ledger(ledger)
    try:
        return led.append(record).seq
    finally:
        if led is not ledger:
            led.close()


def _key_id(key) -> str:
    from ..keys import Key

    return Key.coerce(key, "label_file").id  # the same public id whether a Key or its raw bytes came in


def _image_media(
    src: Path, tmp: Path, fmt: str, payload, key, do_explicit: bool, wording: str, position: str, strength
) -> tuple[str, str]:
    from PIL import Image

    from .explicit_image import render_image_label

    with Image.open(src) as im:
        im.load()
        icc = im.info.get("icc_profile")
        exif = im.getexif()
        mode = im.mode
        lossless_webp = fmt == "webp" and any(c == b"VP8L" for c, _ in _riff._chunks(src.read_bytes(), b"WEBP"))
        if mode not in ("RGB", "RGBA", "L"):
            im = im.convert("RGBA" if "A" in mode or "transparency" in im.info else "RGB")
        arr = np.asarray(im).copy()
    if do_explicit:
        arr = render_image_label(arr, text=wording, position=position)
    engine = _engine("image")
    kw = {} if strength is None else {"strength": strength}
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = np.dstack([np.asarray(engine.embed(arr[..., :3], payload, key, **kw)), arr[..., 3]])
    else:
        arr = np.asarray(engine.embed(arr, payload, key, **kw))
    out = Image.fromarray(arr.astype(np.uint8))
    opts: dict[str, Any] = {}
    if icc:
        opts["icc_profile"] = icc
    if fmt == "jpeg":
        opts.update(quality=95, subsampling=0)
    elif fmt == "webp":
        opts.update(lossless=True) if lossless_webp else opts.update(quality=95)
    if fmt in ("jpeg", "webp") and len(exif):
        opts["exif"] = exif.tobytes()
    buf = io.BytesIO()
    out.save(buf, _PIL_FORMAT[fmt], **opts)
    tmp.write_bytes(buf.getvalue())
    return (f"image:box:{wording}" if do_explicit else "none"), (position if do_explicit else "")


def _audio_media(src: Path, tmp: Path, payload, key, do_explicit: bool, position: str, strength) -> tuple[str, str]:
    from ..media.audio_io import read_audio, write_audio
    from .explicit_audio import add_audio_label

    af = read_audio(src)
    x = af.samples  # [channels, n] float32
    if do_explicit:
        x = add_audio_label(x.T, af.sample_rate, at=position).T
    engine = _engine("audio")
    kw = {} if strength is None else {"strength": strength}
    marked = np.asarray(engine.embed(np.ascontiguousarray(x), af.sample_rate, payload, key, **kw))
    os.unlink(tmp)  # write_audio refuses to replace an existing file
    write_audio(tmp, marked, af)
    return ("audio:rhythm" if do_explicit else "none"), (position if do_explicit else "")


def _first_frame_time(src: Path) -> float:
    import av

    with av.open(str(src)) as c:
        for frame in c.decode(video=0):
            return float(frame.time or 0.0)
    raise LabelError(f"{str(src)!r} has no decodable video frame")


def _video_media(
    src: Path, tmp: Path, payload, key, do_explicit: bool, wording: str, position: str, strength
) -> tuple[str, str]:
    """One transcode: explicit label on the frames of the first 2 s, watermark on all frames and the audio."""
    import av

    from .. import video as pm_video
    from ..media import video_io
    from .explicit_image import ImageLabelStyle, VideoLabeler

    info = video_io.probe(src)
    s = 1.0 if strength is None else float(strength)
    emb = pm_video.FrameEmbedder(info.width, info.height, payload, key, strength=s)
    fps = float(info.fps) if info.fps else 25.0
    style = ImageLabelStyle(text=wording, position=position)
    labeler = VideoLabeler(info.width, info.height, fps, style=style)
    t0 = _first_frame_time(src)

    def op(frame, index: int):
        t = (float(frame.time) - t0) if frame.time is not None else index / fps
        if do_explicit and labeler.due(time_s=t):
            fmt = frame.format.name
            rgb = labeler.label.apply(frame.to_ndarray(format="rgb24"))
            new = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if fmt != "rgb24":
                new = new.reformat(format=fmt)
            new.pts, new.time_base = frame.pts, frame.time_base
            frame = new
        return emb.push(frame)

    audio_factory = getattr(pm_video, "_audio_op_factory", None)
    video_io.transcode(
        src,
        tmp,
        op,
        audio="mark" if audio_factory is not None else "copy",
        audio_op=audio_factory(payload, key, s) if audio_factory is not None else None,
        overwrite=True,
    )
    return (f"video:box:{wording}:2s" if do_explicit else "none"), (position if do_explicit else "")


# ----------------------------------------------------------------------------------------------------- verify
@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found and its verdict (``intact`` / ``stripped`` / ``forged`` / ``none``)."""

    path: str
    verdict: str
    reasons: tuple[str, ...]
    label: AigcLabel | None = None
    metadata_error: str | None = None
    signature: SignatureCheck | None = None
    watermark: Any = None  #: provmark.Detection, or None when no key was given
    ledger_records: tuple = ()
    checks: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        wm = self.watermark
        return {
            "path": self.path,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "label": self.label.to_dict() if self.label else None,
            "metadata_error": self.metadata_error,
            "signature": None
            if self.signature is None
            else {
                "status": self.signature.status.value,
                "key_id": self.signature.key_id,
                "payload": self.signature.payload.hex() if self.signature.payload else None,
            },
            "watermark": None if wm is None else (wm.to_dict() if hasattr(wm, "to_dict") else repr(wm)),
            "ledger_records": [r.to_dict() for r in self.ledger_records],
            "checks": dict(self.checks),
        }


def _detect(path: Path, fmt: str, ctype: ContentType, key):
    if ctype is ContentType.VIDEO:
        from .. import video as pm_video

        return pm_video.detect_file(path, key)
    if ctype is ContentType.IMAGE:
        from PIL import Image

        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
        return _engine("image").detect(arr, key)
    from ..media.audio_io import read_audio

    af = read_audio(path)
    return _engine("audio").detect(af.samples, af.sample_rate, key)


def verify(path: str | os.PathLike, *, key: Any = None, public_keys=(), ledger: Any = None) -> VerifyReport:
    """Cross-check the metadata label, its signature, the watermark (with ``key``) and the ledger record."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{str(p)!r} does not exist")
    fmt, ctype = content_type_of(p)
    reasons: list[str] = []
    forged: list[str] = []
    checks: dict[str, Any] = {}
    label, meta_err = None, None
    try:
        label = read_locations(p).label()
    except AigcFormatError as exc:
        meta_err = str(exc)
        forged.append(f"metadata: {exc}")
    checks["metadata"] = "present" if label else ("invalid" if meta_err else "absent")
    keys = public_keys if isinstance(public_keys, dict) else load_public_keys(public_keys)
    sig = verify_label(label, keys) if label else None
    if sig is not None:
        checks["signature"] = sig.status.value
        if sig.status is SignatureStatus.INVALID:
            forged.append("signature: ReservedCode1 does not match the label fields / payload (altered or forged)")
        elif sig.status is SignatureStatus.UNKNOWN_KEY:
            reasons.append(f"signature by unknown key {sig.key_id}: pass its public key to check it")
        elif sig.status is SignatureStatus.UNSIGNED:
            reasons.append("label is unsigned (ReservedCode1 empty)")
    signed_payload = sig.payload if sig is not None and sig.status is SignatureStatus.VALID else None
    det = None
    wm_payload = None
    if key is not None:
        try:
            det = _detect(p, fmt, ctype, key)
        except (OSError, ValueError) as exc:  # undecodable content: report it, keep the metadata findings
            checks["watermark"] = "undecodable"
            reasons.append(f"content could not be decoded for watermark detection: {exc}")
        wm_payload = bytes(det.payload) if det is not None and det.found and det.payload is not None else None
        if det is not None:
            checks["watermark"] = "found" if wm_payload else "absent"
        if wm_payload and label is not None:
            expected = (
                derive_payload_bytes(key, label.content_producer, label.produce_id, 8 * len(wm_payload))
                if label.content_producer and label.produce_id
                else None
            )
            if expected is not None and expected != wm_payload:
                forged.append(
                    "watermark payload does not belong to the label's producer/ProduceID "
                    "(metadata transplanted from another item)"
                )
        if signed_payload and wm_payload and signed_payload != wm_payload:
            forged.append("watermark payload differs from the signed payload in ReservedCode1")
        if label is not None and not signed_payload and det is not None and not wm_payload:
            reasons.append("no watermark of this key in the content")
        if label is not None and signed_payload and det is not None and not wm_payload:
            forged.append(
                "the signed label promises a watermark that the content does not carry (metadata copied "
                "onto other content, or the watermark was destroyed)"
            )
    else:
        checks["watermark"] = "not checked (no key)"
    records: list = []
    if ledger is not None:
        from ..ledger import Ledger, open_ledger

        led = ledger if isinstance(ledger, Ledger) else open_ledger(ledger)
        try:
            if wm_payload:
                records = led.find(wm_payload)
            elif signed_payload:
                records = led.find(signed_payload)
            elif label is not None:
                records = led.find_produce_id(label.produce_id)
        finally:
            if led is not ledger:
                led.close()
        checks["ledger"] = "found" if records else "absent"
        if label is not None and records:
            r = records[-1]
            if (r.produce_id, r.provider_code) != (label.produce_id, label.content_producer):
                forged.append(
                    f"ledger record seq {r.seq} is for {r.provider_code}/{r.produce_id}, the label claims "
                    f"{label.content_producer}/{label.produce_id}"
                )
        elif label is not None and (signed_payload or wm_payload):
            forged.append("no ledger record for this label's payload")
    if forged:
        verdict = "forged"
        reasons = forged + reasons
    elif label is not None:
        verdict = "intact"
    elif wm_payload:
        verdict = "stripped"
        reasons.insert(0, "metadata label missing but the watermark is present: the label was stripped")
    else:
        verdict = "none"
        if key is None:
            reasons.append("no key given: the watermark was not checked")
    return VerifyReport(str(p), verdict, tuple(reasons), label, meta_err, sig, det, tuple(records), checks)
