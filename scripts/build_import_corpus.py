"""Copy the import corpus (tests/interop/corpus) byte-identical from mirrored git repositories, with SOURCES.tsv.

    python scripts/build_import_corpus.py MIRROR_ROOT

MIRROR_ROOT holds bare clones named owner+name/repo (as the session's `fetch` leaves them). Each file is copied
from the commit each repository's HEAD names, under corpus/<tool>/<its path in the repository>, so files a
config names by relative path (DeepSpeed JSON, dataset_info.json) sit where the config expects them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "interop" / "corpus"
REPOS = {  # tool -> (repository, license as the repository states it)
    "axolotl": ("axolotl-ai-cloud/axolotl", "Apache-2.0"),
    "llamafactory": ("hiyouga/LLaMA-Factory", "Apache-2.0"),
    "handbook": ("huggingface/alignment-handbook", "Apache-2.0"),
    "trl": ("huggingface/trl", "Apache-2.0"),
    "torchtune": ("pytorch/torchtune", "BSD-3-Clause"),
}
LIST = Path(__file__).with_name("import_corpus_files.txt")  # "<tool> <path>" per line


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(repo), *args], check=True, capture_output=True).stdout


def main(root: Path) -> None:
    rows = ["tool\trepository\tpath\tcommit\tblob\tlicense"]
    for line in LIST.read_text().split("\n"):
        if not line.strip() or line.startswith("#"):
            continue
        tool, path = line.split()
        repo_name, license_ = REPOS[tool]
        repo = root / repo_name.replace("/", "+") / "repo"
        commit = git(repo, "rev-parse", "HEAD").decode().strip()
        target = CORPUS / tool / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(git(repo, "show", f"{commit}:{path}"))
        blob = git(repo, "rev-parse", f"{commit}:{path}").decode().strip()  # git's id of the file's bytes
        rows.append(f"{tool}\t{repo_name}\t{path}\t{commit}\t{blob}\t{license_}")
    (CORPUS / "SOURCES.tsv").write_text("\n".join(rows) + "\n")
    print(f"{len(rows) - 1} files")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
