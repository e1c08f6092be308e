"""C2SP signed notes, checkpoints and tlog proofs: the known answers of the C2SP spec and of Go's
golang.org/x/mod/sumdb/note (a different implementation), and every way a note can be bad."""

from __future__ import annotations

import base64

import pytest

from replay.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from replay.merkle import LeafList, ProofInvalid, inclusion_proof, leaf_hash, root
from replay.signed_note import NoteInvalid, Signer, Verifier, open_note, sign, split_note
from replay.tlog_proof import TlogProof

# The C2SP signed-note spec's example ("Verifier keys").
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
# Go's sumdb/note documentation: Ed25519 is deterministic, so we must sign to the same bytes.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK"
    "vqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ORIGIN = "mall-ledger.test/log"


def test_the_spec_example_note_opens_with_its_verifier_key() -> None:
    verifier = Verifier.parse(SPEC_VKEY)
    assert open_note(SPEC_NOTE, [verifier]) == "This is an example message.\n"
    assert verifier.text() == SPEC_VKEY


def test_we_sign_the_go_reference_note_byte_for_byte() -> None:
    signer = Signer.parse(GO_SKEY)
    assert sign(GO_TEXT, [signer]) == GO_NOTE
    assert signer.verifier().text() == GO_VKEY
    assert signer.text() == GO_SKEY
    assert open_note(GO_NOTE, [Verifier.parse(GO_VKEY)]) == GO_TEXT


def test_a_changed_text_or_signature_is_refused() -> None:
    verifier = Verifier.parse(GO_VKEY)
    with pytest.raises(NoteInvalid, match="does not verify"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), [verifier])
    text, [(name, blob)] = split_note(GO_NOTE)
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    forged = text + f"\n— {name} {base64.b64encode(flipped).decode()}\n"
    with pytest.raises(NoteInvalid, match="does not verify"):
        open_note(forged, [verifier])


def test_a_note_signed_by_another_key_only_is_refused_and_unknown_signatures_are_ignored() -> None:
    ours, theirs = Signer.generate(ORIGIN), Signer.generate(ORIGIN)
    with pytest.raises(NoteInvalid, match="no signature by a trusted key"):
        open_note(sign("hello\n", [theirs]), [ours.verifier()])
    assert open_note(sign("hello\n", [theirs, ours]), [ours.verifier()]) == "hello\n"


@pytest.mark.parametrize(
    "note",
    [
        "no blank line\n— a AAAA\n",
        "text\n\n— name not*base64\n",
        "text\n\n- name AAAAAAAA\n",  # a hyphen, not an em dash
        "text\n\n— name AAAA\n",  # four bytes: a key id and no signature
        "text\x07\n\n— name AAAAAAAA\n",
        "text\n\n— name AAAAAAAA",  # no final newline
        "text\n\n" + "— name AAAAAAAA\n" * 101,
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(NoteInvalid) as caught:
        open_note(note, [Verifier.parse(GO_VKEY)])
    assert caught.value.code == "NOTE_INVALID"


@pytest.mark.parametrize(
    "key",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumann+c74f20a3+AhpcQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not type 1
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_verifier_keys_are_refused(key: str) -> None:
    with pytest.raises(NoteInvalid):
        Verifier.parse(key)


def test_a_signer_key_that_does_not_parse_is_refused_without_echoing_it() -> None:
    secret = GO_SKEY.replace("c74f20a3", "c74f20a4")
    with pytest.raises(NoteInvalid) as caught:
        Signer.parse(secret)
    assert "AYEKFALV" not in caught.value.message


def checkpoint_of(size: int) -> tuple[LeafList, Checkpoint]:
    tree = LeafList([leaf_hash(bytes([i])) for i in range(size)])
    return tree, Checkpoint(ORIGIN, size, root(tree, size))


def test_a_checkpoint_is_three_lines_and_round_trips_through_its_signature() -> None:
    signer = Signer.generate(ORIGIN)
    _, checkpoint = checkpoint_of(5)
    note = sign_checkpoint(checkpoint, signer)
    origin, size, root_b64, blank, signature, end = note.split("\n")
    assert (origin, size, blank, end) == (ORIGIN, "5", "", "")
    assert base64.b64decode(root_b64) == checkpoint.root_hash
    assert signature.startswith(f"— {ORIGIN} ")
    assert open_checkpoint(note, [signer.verifier()], ORIGIN) == checkpoint
    with pytest.raises(NoteInvalid, match="another log"):
        open_checkpoint(note, [signer.verifier()], "other.test/log")


@pytest.mark.parametrize(
    "text",
    [
        "o\n05\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",  # leading zero
        "o\n-5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n5\nAAAA\n",  # not 32 bytes
        "\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n5\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(NoteInvalid):
        Checkpoint.parse(text)


def test_a_checkpoint_with_extension_lines_from_elsewhere_is_read() -> None:
    text = "o\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nextension\n"
    assert Checkpoint.parse(text).extensions == ("extension",)
    assert Checkpoint.parse(text).text() == text


def test_a_tlog_proof_round_trips_and_verifies_offline() -> None:
    signer = Signer.generate(ORIGIN)
    tree, checkpoint = checkpoint_of(11)
    proof = TlogProof(6, tuple(inclusion_proof(tree, 6, 11)), sign_checkpoint(checkpoint, signer),
                      extra=b"position 9")  # fmt: skip
    text = proof.text()
    assert text.startswith("c2sp.org/tlog-proof@v1\nextra cG9zaXRpb24gOQ==\nindex 6\n")
    parsed = TlogProof.parse(text)
    assert parsed == proof
    assert parsed.verify(tree.leaves[6], [signer.verifier()], ORIGIN) == checkpoint
    with pytest.raises(ProofInvalid):
        parsed.verify(tree.leaves[5], [signer.verifier()], ORIGIN)
    with pytest.raises(NoteInvalid):
        parsed.verify(tree.leaves[6], [Signer.generate(ORIGIN).verifier()], ORIGIN)


@pytest.mark.parametrize(
    "text",
    ["c2sp.org/tlog-proof@v2\nindex 0\n\nx", "c2sp.org/tlog-proof@v1\nindex 01\n\nx",
     "c2sp.org/tlog-proof@v1\nindex 1\nnot base64!\n\nx", "c2sp.org/tlog-proof@v1\nindex 1\n"],
)  # fmt: skip
def test_malformed_tlog_proofs_are_refused(text: str) -> None:
    with pytest.raises(NoteInvalid):
        TlogProof.parse(text)


def test_every_key_text_round_trips_even_when_its_base64_holds_a_plus() -> None:
    signers = [Signer.generate(ORIGIN) for _ in range(64)]
    assert any("+" in s.verifier().text().split("+", 2)[2] for s in signers)
    for signer in signers:
        assert Verifier.parse(signer.verifier().text()) == signer.verifier()
        assert Signer.parse(signer.text()).text() == signer.text()
