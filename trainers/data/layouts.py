"""Where each dataset keeps its lists, class table and videos, as its owners ship it.

One table per dataset, so the README's "recognised layouts" and the readers cannot drift
apart. Candidates are tried in order; the first that exists wins.

* ARID v1.0: `list_cvt/ARID_split{1,2,3}_{train,test,other}.txt`, `list_cvt/mapping_table.txt`,
  videos in `data/` (a link to `clips_v1/avi`), `clips_v1/`, `clips_v1/avi/` or the root.
* ARID v1.5: the v1.0 names, or third-party `list_cvt/split_{0,1}/split{0,1}_{train,test}.txt`;
  `.mp4` videos in `clips_v1.5/`, `data/` or the root.
* Dark-48: `annotations/classInd.txt`, `annotations/{train,test}_split{1,2,3}.txt`, videos
  in class folders under the root or `videos/`.
* UG2+ ARID1.1 (track 2.1): `list_cvt/ARID1.1_t1_train_pub.csv`, `list_cvt/mapping_table_t1.txt`
  (ids 5..10), videos in `train_data/`, `test_data/`, `clips_v1.5/` or the root.
* csv: `{train,val,test}.csv` (+ `classes.txt`) at the root.
"""

from __future__ import annotations

from pathlib import Path


class ManifestError(ValueError):
    """A list file is missing or one of its lines is wrong; the message names file and line."""


VIDEO_DIRS: dict[str, tuple[str, ...]] = {
    "arid": ("data", "clips_v1", "clips_v1/avi"),
    "arid_v1_5": ("clips_v1.5", "data", "clips_v1"),
    "ug2": ("train_data", "test_data", "clips_v1.5"),
    "dark48": ("videos",),
    "csv": (),
}
ARID_TABLE = ("list_cvt/mapping_table.txt", "mapping_table.txt")
UG2_TABLE = ("list_cvt/mapping_table_t1.txt", "mapping_table_t1.txt")
DARK48_TABLE = ("annotations/classInd.txt", "classInd.txt")
# The subsets each format ships lists for; ARID's third list is `other` (`others` in some copies).
SUBSETS = {
    "arid": ("train", "test", "other"),
    "arid_v1_5": ("train", "test", "other"),
    "dark48": ("train", "test"),
    "ug2": ("train",),
    "csv": ("train", "val", "test"),
}
UG2_UNLABELLED = ("list_cvt/ARID1.1_t1_validation_gt_pub.csv", "ARID1.1_t1_validation_gt_pub.csv")


def find(root: Path, candidates: tuple[str, ...] | list[str]) -> Path | None:
    """The first candidate (relative to `root`) that is a file."""
    for rel in candidates:
        if (Path(root) / rel).is_file():
            return Path(root) / rel
    return None


def list_candidates(fmt: str, split: int, subset: str) -> list[str]:
    """Where `fmt` keeps its official list for `subset`, relative to the root, in order."""
    if fmt in ("arid", "arid_v1_5"):
        names = [f"ARID_split{split}_{subset}.txt"]
        if subset == "other":
            names.append(f"ARID_split{split}_others.txt")
        found = [f"{d}{n}" for n in names for d in ("list_cvt/", "", "splits/")]
        if fmt == "arid_v1_5":
            found.append(f"list_cvt/split_{split}/split{split}_{subset}.txt")
        return found
    if fmt == "dark48":
        return [f"annotations/{subset}_split{split}.txt", f"{subset}_split{split}.txt"]
    if fmt == "ug2":
        return [f"list_cvt/ARID1.1_t1_{subset}_pub.csv", f"ARID1.1_t1_{subset}_pub.csv"]
    return [f"{subset}.csv"]


def find_list(fmt: str, root: Path, split: int, subset: str) -> Path | None:
    return find(root, list_candidates(fmt, split, subset))


def default_list(fmt: str, root: Path, split: int, subset: str) -> Path:
    """The official list for `subset`; an error that names every place looked in."""
    found = find_list(fmt, root, split, subset)
    if found is None:
        looked = ", ".join(str(Path(root) / c) for c in list_candidates(fmt, split, subset))
        raise ManifestError(f"no {subset} list for {fmt} split {split}: looked for {looked}")
    return found


def official_lists(fmt: str, root: Path, split: int) -> dict[str, Path]:
    """Every labelled list of this split that exists, by subset (for `data check`)."""
    lists = {s: find_list(fmt, root, split, s) for s in SUBSETS.get(fmt, ("train", "test"))}
    return {s: p for s, p in lists.items() if p is not None}
