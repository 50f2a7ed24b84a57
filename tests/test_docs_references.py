"""The repository's texts stand on their own: nothing cites a document a clone does not have, and every
reference into ``docs/`` (a file, a quoted section, a numbered security case) and every test a document
names exists. Reads the tracked files only; needs no running system."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Documents the project was started from, kept outside the repository: texts say what matters in docs/.
OUTSIDE = re.compile("|".join((
    r"(?<![\w-])product\.md",
    r"(?<![\w-])eid-protocols(?:\.md)?\b",
    r"(?<![\w-])security-tests(?:\.md)?\b",
    r"(?<![\w-])keycloak\.md",  # docs/keycloak-fronted.md is ours
    r"(?<![\w-])style\.md",
    r"\.\./shared\b",
    r"/work/shared\b",
    r"\bthe seed\b",
    r"\bseed page\b",
    r"\bseed's\b",
    r"\(seed:",
    r"\[UNCERTAIN\]",
    r"\bSID-v[23]\b",
)), re.IGNORECASE)
DOC_REF = re.compile(r"docs/([\w.-]+\.md)((?:,\s*\"[^\"\n]+\")*)")
CASE_REF = re.compile(r"docs/security\.md,\s*cases?\s+(\d+)(?:\s*-\s*(\d+))?")
TEST_REF = re.compile(r"\b(test_\w+\.py)?::(test_\w+)")
TEST_FILE = re.compile(r"\b(test_\w+\.py)\b")


@cache
def tracked_texts() -> dict[str, str]:
    """Every tracked file that is text, by path."""
    names = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True,
                           text=True).stdout.split("\0")
    texts = {}
    for name in filter(None, names):
        try:
            texts[name] = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # images, fonts; a file deleted in the working tree
    return texts


def headings(doc: str) -> list[str]:
    """The section titles of a document in docs/."""
    return [m.group(1).strip() for m in re.finditer(r"^#+\s+(.+)$", (ROOT / "docs" / doc).read_text(), re.M)]


def where(name: str, text: str, match: re.Match[str]) -> str:
    return f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)!r}"


def test_no_text_cites_a_document_outside_the_repository():
    found = [where(name, text, m) for name, text in tracked_texts().items() if name != THIS
             for m in OUTSIDE.finditer(text)]
    assert not found, "write what matters into docs/ and cite that instead:\n" + "\n".join(found)


def test_references_into_docs_name_files_and_sections_that_exist():
    broken = []
    for name, text in tracked_texts().items():
        if name == THIS:
            continue
        for m in DOC_REF.finditer(text):
            doc = m.group(1)
            if not (ROOT / "docs" / doc).is_file():
                broken.append(where(name, text, m) + " (no such file)")
                continue
            titles = headings(doc)
            for section in re.findall(r"\"([^\"]+)\"", m.group(2)):
                section = " ".join(section.split())
                if not any(t == section or t.startswith(section + " ") for t in titles):
                    broken.append(where(name, text, m) + f" (no section {section!r})")
    assert not broken, "\n".join(broken)


def test_security_cases_cited_are_numbered_in_docs_security():
    numbered = set(re.findall(r"^\| (\d+) \|", (ROOT / "docs/security.md").read_text(), re.M))
    assert {str(n) for n in range(1, 81)} <= numbered, "docs/security.md numbers the cases 1 to 80"
    broken = []
    for name, text in tracked_texts().items():
        for m in CASE_REF.finditer(text):
            first, last = int(m.group(1)), int(m.group(2) or m.group(1))
            if not {str(n) for n in range(first, last + 1)} <= numbered:
                broken.append(where(name, text, m))
    assert not broken, "\n".join(broken)


def test_tests_named_in_the_docs_exist():
    defined: dict[str, set[str]] = {}
    for path in (ROOT / "tests").glob("test_*.py"):
        defined[path.name] = set(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M))
    missing = []
    for name, text in tracked_texts().items():
        if not (name.startswith("docs/") or name == "README.md") or not name.endswith(".md"):
            continue
        for m in TEST_FILE.finditer(text):
            if m.group(1) not in defined:
                missing.append(where(name, text, m) + " (no such test file)")
        current = None
        for m in TEST_REF.finditer(text):
            current = m.group(1) or current
            if current is None or m.group(2) not in defined.get(current, set()):
                missing.append(where(name, text, m) + f" (not a test in {current})")
    assert not missing, "\n".join(missing)
