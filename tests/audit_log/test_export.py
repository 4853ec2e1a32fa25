"""medport audit export / verify --from-export (docs/audit.md, Export): a mirror recomputes the tree
from the export alone, checks it against the signed checkpoint, and names the index of any change."""
from __future__ import annotations

import pytest

from fhirserver.audit_log import log as audit_log
from fhirserver.audit_log import merkle
from fhirserver.audit_log.export import ExportError, export, fold, right_nodes, verifier_keys, verify_export
from fhirserver.audit_log.keys import AuditKeys
from tests.audit_log.test_log import write_events


def _export(ctx, tmp_path, **kw):
    out, held = str(tmp_path / "log.ndjson"), str(tmp_path / "log.checkpoint")
    span = export(ctx.store, ctx.settings, out, held, **kw)
    with open(held, encoding="utf-8") as f:
        return out, f.read(), span


def _lines(path):
    with open(path, "rb") as f:
        return f.read().splitlines(keepends=True)


def test_export_then_verify_with_the_public_key(ctx, tmp_path):
    write_events(ctx, 11)
    out, text, span = _export(ctx, tmp_path)
    assert span == (0, 11, 11)                  # integrated first: the checkpoint covers every entry
    assert AuditKeys(ctx.store).verify(text).size == 11
    lines = _lines(out)
    assert [merkle.leaf_hash(x.rstrip(b"\n")) for x in lines] == [e.leaf for e in audit_log.all_entries(ctx.store)]
    report = verify_export(out, text, verifier_keys(ctx.store, ctx.settings))
    assert report.ok and report.size == 11, report.problems


def test_a_range_is_verified_against_the_whole_tree(ctx, tmp_path):
    write_events(ctx, 13)
    out, text, span = _export(ctx, tmp_path, start=3, end=9)
    assert span == (3, 9, 13) and len(_lines(out)) == 6
    assert verify_export(out, text, verifier_keys(ctx.store, ctx.settings)).ok
    (tmp_path / "log.ndjson").write_bytes(b"".join(_lines(out)[:2] + [b'{"x":1}\n'] + _lines(out)[3:]))
    report = verify_export(out, text, verifier_keys(ctx.store, ctx.settings))
    assert (report.first.index, report.first.kind) == (5, "changed entry")


@pytest.mark.parametrize("tamper,index,kind", [("alter", 4, "changed entry"), ("delete", 4, "deleted entry"),
                                               ("swap", 3, "swapped entries"), ("add", 10, "entry inserted in the middle")])
def test_each_change_of_the_export_is_named(ctx, tmp_path, tamper, index, kind):
    write_events(ctx, 10)
    out, text, _span = _export(ctx, tmp_path)
    lines = _lines(out)
    if tamper == "alter":
        lines[4] = lines[4].replace(b"event 4", b"event X")
    elif tamper == "delete":
        del lines[4]
    elif tamper == "swap":
        lines[3], lines[6] = lines[6], lines[3]
    else:
        lines.append(lines[0])
    (tmp_path / "log.ndjson").write_bytes(b"".join(lines))
    report = verify_export(out, text, verifier_keys(ctx.store, ctx.settings))
    assert (report.first.index, report.first.kind) == (index, kind), report.problems


def test_a_forged_proof_or_another_key_is_refused(ctx, tmp_path):
    write_events(ctx, 5)
    out, text, _span = _export(ctx, tmp_path)
    keys = verifier_keys(ctx.store, ctx.settings)
    AuditKeys(ctx.store).rotate()
    other = [k for k in verifier_keys(ctx.store, ctx.settings) if k not in keys]
    assert verify_export(out, text, other).first.kind == "bad checkpoint"
    proof = (tmp_path / "log.ndjson.proof").read_text()
    import json
    forged = json.loads(proof)
    forged["leaves"] = forged["leaves"][:-8] + "AAAAAAA="
    (tmp_path / "log.ndjson.proof").write_text(json.dumps(forged))
    assert verify_export(out, text, keys).first.kind == "bad proof"


def test_right_nodes_fold_to_the_root():
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(23)]
    for start in range(0, 24):
        for end in range(start, 24):
            left = audit_log.extend([], leaves[:start])
            assert fold(left, leaves[start:end], right_nodes(leaves, end)) == merkle.root(leaves)


def test_export_refuses_a_bad_range(ctx, tmp_path):
    write_events(ctx, 3)
    with pytest.raises(ExportError):
        _export(ctx, tmp_path, start=5)


def test_cli_export_public_key_and_verify(tmp_path, capsys):
    from fhirserver import create_app
    from fhirserver.cli import main
    from tests.conftest import make_settings
    settings = make_settings(tmp_path)
    write_events(create_app(settings).config["MEDPORT"], 8)
    url, out = settings.store, str(tmp_path / "a.ndjson")
    assert main(["audit", "export", out, "--store", url]) == 0
    assert "exported entries 0..7 of 8" in capsys.readouterr().out
    assert main(["audit", "public-key", "--store", url]) == 0
    (tmp_path / "key.txt").write_text(capsys.readouterr().out)
    args = ["audit", "verify", "--from-export", out, "--checkpoint", out + ".checkpoint",
            "--public-key", str(tmp_path / "key.txt")]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("OK: 8 entries verified")
    lines = _lines(out)
    lines[2], lines[5] = lines[5], lines[2]
    (tmp_path / "a.ndjson").write_bytes(b"".join(lines))
    assert main(args) == 1
    assert "FAILED at index 2: swapped entries" in capsys.readouterr().out
    assert main(["audit", "verify", "--from-export", out]) == 2
