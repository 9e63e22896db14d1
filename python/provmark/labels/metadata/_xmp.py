"""XMP packets: merge the ``TC260:AIGC`` property and the IPTC digital source type into an existing packet.

Image guide PG-20259A: namespace ``http://www.tc260.org.cn/ns/AIGC/1.0/``, prefix ``TC260``, property
``TC260:AIGC`` holding the bare JSON; merge by property, never overwrite the namespace. IPTC:
``Iptc4xmpExt:DigitalSourceType`` = trainedAlgorithmicMedia. Other properties of an existing packet are kept.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..errors import AigcFormatError

NS_X = "adobe:ns:meta/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_TC260 = "http://www.tc260.org.cn/ns/AIGC/1.0/"
NS_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
DST_TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

_PREFIXES = {
    "x": NS_X,
    "rdf": NS_RDF,
    "TC260": NS_TC260,
    "Iptc4xmpExt": NS_IPTC_EXT,
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "stEvt": "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
}
for _p, _u in _PREFIXES.items():
    ET.register_namespace(_p, _u)

_AIGC = f"{{{NS_TC260}}}AIGC"
_DST = f"{{{NS_IPTC_EXT}}}DigitalSourceType"
_DESC = f"{{{NS_RDF}}}Description"
_RDF = f"{{{NS_RDF}}}RDF"
_ABOUT = f"{{{NS_RDF}}}about"
_HEADER = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
_TRAILER = '<?xpacket end="w"?>'
_XPACKET = re.compile(rb"<\?xpacket[^>]*\?>")
_MAX_PACKET = 4 << 20


def _parse(packet: bytes) -> ET.Element:
    if len(packet) > _MAX_PACKET:
        raise AigcFormatError(f"XMP packet of {len(packet)} bytes is larger than {_MAX_PACKET}")
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        raise AigcFormatError("XMP packet contains a DOCTYPE/ENTITY declaration; refusing to parse it")
    body = _XPACKET.sub(b"", packet).strip(b"\x00 \t\r\n")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise AigcFormatError(f"XMP packet is not well-formed XML: {exc}") from None
    return root


def _rdf(root: ET.Element) -> ET.Element:
    if root.tag == _RDF:
        return root
    rdf = root.find(f".//{_RDF}")
    if rdf is None:
        if root.tag != f"{{{NS_X}}}xmpmeta":
            raise AigcFormatError(f"XMP packet root is {root.tag!r}, not x:xmpmeta or rdf:RDF")
        rdf = ET.SubElement(root, _RDF)  # an empty x:xmpmeta (some writers emit one)
    return rdf


def read_aigc(packet: bytes) -> list[str]:
    """Every ``TC260:AIGC`` value in the packet (attribute or element form), in document order."""
    root = _parse(packet)
    out = []
    for desc in root.iter(_DESC):
        if _AIGC in desc.attrib:
            out.append(desc.attrib[_AIGC])
        for el in desc.findall(_AIGC):
            out.append("".join(el.itertext()))
    return out


def read_digital_source_type(packet: bytes) -> list[str]:
    root = _parse(packet)
    out = []
    for desc in root.iter(_DESC):
        if _DST in desc.attrib:
            out.append(desc.attrib[_DST])
        out += ["".join(el.itertext()).strip() for el in desc.findall(_DST)]
    return out


def merge(packet: bytes | None, aigc_json: str, *, digital_source_type: str | None = DST_TRAINED) -> bytes:
    """Return a packet with exactly one ``TC260:AIGC`` (and one DigitalSourceType), other properties kept."""
    if packet:
        root = _parse(packet)
        rdf = _rdf(root)
    else:
        root = ET.Element(f"{{{NS_X}}}xmpmeta")
        rdf = ET.SubElement(root, _RDF)
    descs = list(rdf.iter(_DESC))
    for desc in descs:
        desc.attrib.pop(_AIGC, None)
        for el in desc.findall(_AIGC):
            desc.remove(el)
        if digital_source_type is not None:
            desc.attrib.pop(_DST, None)
            for el in desc.findall(_DST):
                desc.remove(el)
    target = descs[0] if descs else ET.SubElement(rdf, _DESC, {_ABOUT: ""})
    ET.SubElement(target, _AIGC).text = aigc_json
    if digital_source_type is not None:
        ET.SubElement(target, _DST).text = digital_source_type
    xml = ET.tostring(root, encoding="unicode")
    return (_HEADER + "\n" + xml + "\n" + _TRAILER).encode("utf-8")
