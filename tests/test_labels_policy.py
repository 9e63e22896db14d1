"""Label policy (LABELING.md section 10), the element rule (section 3) and provider-code checks."""

from __future__ import annotations

import pytest

from provmark.labels import (
    ConsentRequiredError,
    ContentType,
    ElementRuleError,
    LabelKind,
    Policy,
    PolicyError,
    ServiceType,
    check_wording,
    has_required_elements,
)

CODE = "001191110102MAD55U9H0F10002"
E, M, W, UA = LabelKind.EXPLICIT, LabelKind.METADATA, LabelKind.WATERMARK, LabelKind.AGREEMENT

# (content type, labels due for a service within DSP Art. 17(1)) straight from the section 10 table
ART17_TABLE = {
    "text": {E, M, UA},
    "image": {E, M, W, UA},
    "audio": {E, M, W, UA},
    "video": {E, M, W, UA},
    "virtual_scene": {E, M, UA},
}
CLAUSES = {"text": "5.1", "image": "5.2", "audio": "5.3", "video": "5.4", "virtual_scene": "5.5"}


@pytest.mark.parametrize("service", ["dialogue", "voice", "face", "immersive", "other"])
@pytest.mark.parametrize("content", list(ART17_TABLE))
def test_art17_services_owe_the_table_labels(service, content):
    req = Policy(CODE, service).requirements(content)
    assert req.due == ART17_TABLE[content]
    assert req.recommended == frozenset()
    assert req.explicit_clause == f"GB 45438 {CLAUSES[content]}"
    assert not req.log_recipient
    assert E in req and "explicit" in req


@pytest.mark.parametrize("content", list(ART17_TABLE))
def test_outside_art17_owes_metadata_and_applies_explicit_by_default(content):
    req = Policy(CODE, "outside").requirements(content)
    assert E not in req.due and M in req.due and UA in req.due
    assert E in req.recommended and E in req.applied
    assert (W in req.recommended) == (content in ("image", "audio", "video"))
    assert W not in req.due


@pytest.mark.parametrize("service", ["dialogue", "face", "outside"])
@pytest.mark.parametrize("content", list(ART17_TABLE))
def test_unlabeled_copy_drops_explicit_keeps_metadata_and_logs_recipient(service, content):
    req = Policy(CODE, service, unlabeled_copy_recipient="acct-42").requirements(content)
    assert E not in req.applied
    assert M in req.due and UA in req.due
    assert req.log_recipient
    assert req.explicit_clause is None


def test_unlabeled_copy_needs_a_recipient():
    with pytest.raises(PolicyError, match=r"recipient|account"):
        Policy(CODE, "dialogue", unlabeled_copy_recipient="  ")


@pytest.mark.parametrize("service", ["face", "voice"])
def test_biometric_editing_needs_consent(service):
    with pytest.raises(ConsentRequiredError, match=r"Art\. 14"):
        Policy(CODE, service, biometric_edit=True)
    with pytest.raises(ConsentRequiredError):
        Policy(CODE, service, biometric_edit=True, consent_ref="")
    p = Policy(CODE, service, biometric_edit=True, consent_ref="consent/2026/0042")
    assert any("consent/2026/0042" in n for n in p.requirements("image").notes)


def test_biometric_flag_is_irrelevant_for_non_biometric_services():
    Policy(CODE, "dialogue", biometric_edit=True)  # no face/voice: nothing to consent to


def test_enums_and_bad_values():
    assert Policy(CODE, ServiceType.VOICE).service_type is ServiceType.VOICE
    assert Policy(CODE, "voice").requirements(ContentType.AUDIO).content_type is ContentType.AUDIO
    with pytest.raises(PolicyError, match="service type"):
        Policy(CODE, "chat")
    with pytest.raises(PolicyError, match="content type"):
        Policy(CODE, "dialogue").requirements("hologram")


@pytest.mark.parametrize("bad", ["某某科技有限公司", "ACME Corp", 'a"b', "a\\b", "", "ü1234"])
def test_provider_code_charset(bad):
    with pytest.raises(PolicyError):
        Policy(bad, "dialogue")


def test_provider_code_type():
    with pytest.raises(TypeError):
        Policy(12345, "dialogue")


@pytest.mark.parametrize("text", ["AI生成", "AI合成", "人工智能生成", "人工智能生成合成", "本内容由AI生成", "ＡＩ生成"])
def test_element_rule_accepts(text):
    assert has_required_elements(text)
    assert check_wording(text) == text


@pytest.mark.parametrize("text", ["AI", "生成", "人工智能", "ai生成", "AI generated", "合成图片", " "])
def test_element_rule_rejects(text):
    assert not has_required_elements(text)
    with pytest.raises(ElementRuleError):
        check_wording(text)
