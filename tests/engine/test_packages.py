"""Loading .gbai bot packages from disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from botserver.engine.packages import BotPackage, load_package, load_packages

BOTS = Path(__file__).resolve().parents[2] / "bots"


def make_bot(
    root: Path,
    name: str,
    config: str | None = "name,value\n",
    dialogs: dict[str, str] | None = None,
) -> Path:
    package = root / f"{name}.gbai"
    (package / f"{name}.gbot").mkdir(parents=True)
    if config is not None:
        (package / f"{name}.gbot" / "config.csv").write_text(config, encoding="utf-8")
    (package / f"{name}.gbdialog").mkdir()
    for dialog, source in (dialogs if dialogs is not None else {"start": 'TALK "hi"'}).items():
        (package / f"{name}.gbdialog" / f"{dialog}.bas").write_text(source, encoding="utf-8")
    return package


def test_full_config_is_read(tmp_path: Path) -> None:
    make_bot(
        tmp_path,
        "sales",
        'name,value\ndescription,"Sales bot, with a comma"\npublic,false\n'
        'groups,"sales; managers ,support"\nsession-timeout,20\nstart-dialog,Main.bas\n'
        'param-company,Acme\nParam-Greeting,"Hello, you"\ncustom,x\n',
        {"main": 'TALK "hi ${company}"', "Other": "HEAR x"},
    )
    (package,) = load_packages(tmp_path)
    assert package.error is None and package.ok
    assert package.name == "sales"
    assert package.path == tmp_path / "sales.gbai"
    assert package.description == "Sales bot, with a comma"
    assert package.public is False
    assert package.groups == ["sales", "managers", "support"]
    assert package.session_timeout_minutes == 20
    assert package.entry_dialog == "main"
    assert package.params == {"company": "Acme", "greeting": "Hello, you"}
    assert package.config["custom"] == "x"
    assert package.config["description"] == "Sales bot, with a comma"
    assert sorted(package.dialogs) == ["main", "other"]
    assert package.dialogs["other"].filename == "Other.bas"
    assert package.entry is package.dialogs["main"]


def test_defaults_without_header_or_optional_rows(tmp_path: Path) -> None:
    make_bot(tmp_path, "plain", "description,Just a bot\n")
    package = load_package(tmp_path / "plain.gbai")
    assert package.error is None
    assert package.description == "Just a bot"
    assert package.public is True
    assert package.groups == []
    assert package.session_timeout_minutes is None
    assert package.entry_dialog == "start"
    assert package.params == {}
    assert list(package.dialogs) == ["start"]


def test_missing_config_uses_defaults(tmp_path: Path) -> None:
    make_bot(tmp_path, "bare", config=None)
    package = load_package(tmp_path / "bare.gbai")
    assert package.error is None and package.public and package.description == ""


def test_syntax_error_is_reported_with_file_and_line(tmp_path: Path) -> None:
    make_bot(tmp_path, "broken", dialogs={"start": 'TALK "a"\nIF x THEN\nTALK "b"\n'})
    make_bot(tmp_path, "fine")
    broken, fine = load_packages(tmp_path)
    assert broken.name == "broken"
    assert broken.error == "start.bas:3: Expected END IF"
    assert broken.dialogs == {}
    assert fine.error is None and "start" in fine.dialogs


def test_error_in_a_secondary_dialog_fails_the_package(tmp_path: Path) -> None:
    make_bot(tmp_path, "half", dialogs={"start": 'TALK "ok"', "extra": "FROB 1"})
    package = load_package(tmp_path / "half.gbai")
    assert package.error == "extra.bas:1: Unknown keyword FROB"
    assert package.dialogs == {}


def test_missing_start_dialog(tmp_path: Path) -> None:
    make_bot(tmp_path, "nostart", dialogs={"other": 'TALK "x"'})
    make_bot(tmp_path, "wrongstart", "start-dialog,welcome\n")
    nostart, wrongstart = load_packages(tmp_path)
    assert nostart.error == "start.bas: dialog not found in nostart.gbdialog"
    assert wrongstart.error == "welcome.bas: dialog not found in wrongstart.gbdialog"


def test_bad_csv_and_bad_values(tmp_path: Path) -> None:
    make_bot(tmp_path, "a", 'name,value\ndescription,"unterminated\n')
    make_bot(tmp_path, "b", "name,value\njustonecolumn\n")
    make_bot(tmp_path, "c", "public,perhaps\n")
    make_bot(tmp_path, "d", "session-timeout,soon\n")
    make_bot(tmp_path, "e", "session-timeout,0\n")
    errors = {package.name: package.error for package in load_packages(tmp_path)}
    assert errors["a"] is not None and errors["a"].startswith("config.csv:")
    assert errors["b"] == "config.csv:2: expected name,value"
    assert errors["c"] == "config.csv: public must be true or false, not 'perhaps'"
    assert errors["d"] == (
        "config.csv: session-timeout must be a whole number of minutes, not 'soon'"
    )
    assert errors["e"] == "config.csv: session-timeout must be positive"
    assert all(not package.dialogs for package in load_packages(tmp_path))


def test_non_packages_are_ignored_and_missing_folder_is_empty(tmp_path: Path) -> None:
    make_bot(tmp_path, "real")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.gbai").write_text("not a folder")
    assert [package.name for package in load_packages(tmp_path)] == ["real"]
    assert load_packages(tmp_path / "missing") == []


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    package = make_bot(tmp_path, "bom", "\ufeffname,value\ndescription,Olá\n")
    (package / "bom.gbdialog" / "start.bas").write_text('\ufeffTALK "olá"', encoding="utf-8")
    loaded = load_package(package)
    assert loaded.error is None and loaded.description == "Olá"


def test_the_example_bots_load_without_errors() -> None:
    packages = {package.name: package for package in load_packages(BOTS)}
    assert {"default", "customer-service"} <= set(packages)
    for name in ("default", "customer-service"):
        package: BotPackage = packages[name]
        assert package.error is None, package.error
        assert package.description
        assert package.public is True
        assert package.entry is not None
    assert packages["customer-service"].params["company"] == "Acme Corp"


def test_unexpected_failures_are_contained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_bot(tmp_path, "boom")
    make_bot(tmp_path, "calm")

    def explode(source: str, filename: str) -> object:
        if "boom" in source:
            raise RuntimeError("kaput")
        return real(source, filename)

    from botserver.engine import packages as module

    real = module.compile_source
    (tmp_path / "boom.gbai" / "boom.gbdialog" / "start.bas").write_text('TALK "boom"')
    monkeypatch.setattr(module, "compile_source", explode)
    boom, calm = load_packages(tmp_path)
    assert boom.error == "boom.gbai: cannot load (RuntimeError: kaput)"
    assert boom.dialogs == {}
    assert calm.error is None
