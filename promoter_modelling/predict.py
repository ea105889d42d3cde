"""Predict expression for DNA sequences with trained checkpoints: one model or a seed ensemble.

    promoter-modelling predict --checkpoint best.ckpt [--checkpoint seed_1.ckpt ...] \\
        --input sequences.fa --output predictions.csv
    promoter-modelling predict --run_dir results/saved_models/<run> --input ... --output ...

Input is FASTA (`>id` lines, sequences on one or more lines) or a CSV/TSV table with a
`sequence` column (an `id` or `name` column is carried over); `.gz` files are read directly.
Output is a table with the id (when there is one), the input sequence and one `pred_<output>`
column per output of the model's head (`pred_<head>_<output>` when several heads are
predicted): CSV for `.csv`, tab-separated for `.tsv` (either may end in `.gz`), Parquet for
`.parquet`; other names are refused, as is the input file itself. With several checkpoints the
predictions are the mean over checkpoints. A UTF-8 byte-order mark in the input is ignored;
repeated ids get a warning (every record is still predicted).

Each checkpoint carries its input recipe, so sequences become token ids (DNABERT) or motif
counts (MotifBasedFCN) exactly as in training, without any training flag.
Sequences must have the length the model was trained on (recorded in the checkpoint);
`--pad_or_crop` centre-crops longer ones and pads shorter ones with N on both sides (the extra
base, when the difference is odd, goes to the right end) instead of refusing them.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from promoter_modelling import runs
from promoter_modelling import sequence as seqlib
from promoter_modelling.errors import InputError
from promoter_modelling.heads import GROUPED_MULTICLASS, HeadSpec, head_probabilities
from promoter_modelling.io_utils import save_parquet, save_table

ID_COLUMNS = ("id", "name", "sequence_id", "seq_id")
_INVALID = re.compile(r"[^ACGTNacgtn]")


@dataclass
class SequenceRecords:
    """Sequences read from a file, with ids (if any) and a label per record for messages."""

    sequences: list[str]
    ids: list[str] | None = None
    id_column: str | None = None
    labels: list[str] | None = None
    source: str = "sequences"

    def label(self, i: int) -> str:
        if self.labels:
            return self.labels[i]
        return f"sequence {i + 1}" + (f" ({self.ids[i]!r})" if self.ids else "")


# --- reading -----------------------------------------------------------------------------------

def _open_text(path: str):
    """Text of a (gzipped) file; a UTF-8 byte-order mark at the start is dropped ("utf-8-sig")."""
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _first_char(path: str) -> str:
    with _open_text(path) as handle:
        for line in handle:
            if line.strip():
                return line.lstrip()[0]
    return ""


def read_fasta(path: str) -> SequenceRecords:
    """Records of a FASTA file; ids are the first word of each header."""
    ids: list[str] = []
    labels: list[str] = []
    chunks: list[list[str]] = []
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                name = line[1:].split(maxsplit=1)[0] if line[1:].strip() else ""
                if not name:
                    raise InputError(f"{path}: line {number}: FASTA header without a name")
                ids.append(name)
                labels.append(f"record {name!r} (line {number})")
                chunks.append([])
            elif not chunks:
                raise InputError(f"{path}: line {number}: sequence data before the first '>' header")
            else:
                chunks[-1].append(line.replace(" ", ""))
    sequences = ["".join(c) for c in chunks]
    for label, seq in zip(labels, sequences):
        if not seq:
            raise InputError(f"{path}: {label} has an empty sequence")
    return SequenceRecords(sequences, ids, "id", labels, path)


def read_table_sequences(path: str) -> SequenceRecords:
    """Records of a CSV/TSV file with a `sequence` column (tab-separated for .tsv/.tab/.txt,
    otherwise guessed from the header line)."""
    base = path[:-3] if path.endswith(".gz") else path
    if base.endswith((".tsv", ".tab", ".txt")):
        sep = "\t"
    elif base.endswith(".csv"):
        sep = ","
    else:
        with _open_text(path) as handle:
            sep = "\t" if "\t" in handle.readline() else ","
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=True,
                            encoding="utf-8-sig")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be parsed as a {'TSV' if sep == chr(9) else 'CSV'} table "
                         f"({str(exc).splitlines()[0]})") from exc
    columns = {str(c).strip().lower(): c for c in table.columns}
    if "sequence" not in columns:
        raise InputError(f"{path}: no 'sequence' column (found: {', '.join(map(str, table.columns))}); "
                         "give a table with a 'sequence' column or a FASTA file")
    if table.empty:
        raise InputError(f"{path}: no sequences (the table has only a header)")
    sequences = [s.strip() for s in table[columns["sequence"]].tolist()]
    id_column = next((columns[c] for c in ID_COLUMNS if c in columns), None)
    ids = table[id_column].astype(str).tolist() if id_column is not None else None
    labels = [f"row {i + 2}" + (f" ({ids[i]!r})" if ids else "") for i in range(len(sequences))]
    empty = [i for i, s in enumerate(sequences) if not s]
    if empty:
        raise InputError(f"{path}: {labels[empty[0]]} has an empty sequence")
    return SequenceRecords(sequences, ids, id_column, labels, path)


FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas", ".fa.gz", ".fasta.gz", ".fna.gz", ".fas.gz")


def read_sequences(path: str) -> SequenceRecords:
    """Read FASTA (a FASTA file name, or first character '>') or a CSV/TSV table with a
    `sequence` column."""
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory; give a FASTA or CSV/TSV file of sequences")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: file is empty")
    try:
        first = _first_char(path)
        if not first:
            raise InputError(f"{path}: file is empty (only blank lines)")
        fasta = first == ">" or path.lower().endswith(FASTA_SUFFIXES)
        records = read_fasta(path) if fasta else read_table_sequences(path)
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise InputError(f"{path}: not a text FASTA/CSV/TSV file ({exc})") from exc
    if not records.sequences:
        raise InputError(f"{path}: no sequences found")
    return records


# --- checking and adjusting ----------------------------------------------------------------------

def warn_duplicate_ids(records: SequenceRecords) -> None:
    """One line on stderr when ids repeat: the first repeated id and how many ids repeat.
    Every record is still predicted (the output then repeats those ids)."""
    if not records.ids:
        return
    ids = pd.Series(records.ids)
    repeated = ids[ids.duplicated(keep=False)]
    if repeated.empty:
        return
    first = repeated.iloc[0]
    print(f"[predict] warning: {records.source}: {repeated.nunique()} id(s) occur more than once (first: {first!r}, "
          f"{int((ids == first).sum())} times; {len(repeated)} records in all); every record is predicted",
          file=sys.stderr)


def check_device(device: str | None) -> None:
    """Refuse a device string torch does not know, or a GPU this machine does not have, before
    any model is loaded."""
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"device {device!r} is not a torch device; use cpu, cuda, cuda:N or mps") from exc
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r}: no CUDA GPU is available on this machine "
                             "(torch.cuda.is_available() is False); use --device cpu")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise InputError(f"device {device!r}: this machine has {count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r}: Apple MPS is not available on this machine; use --device cpu")


def check_bases(records: SequenceRecords) -> None:
    """Refuse the first sequence with a character other than A, C, G, T or N (either case)."""
    try:
        seqlib.encode_flat(records.sequences)  # validation only: no per-sequence arrays
    except InputError:
        for i, seq in enumerate(records.sequences):
            bad = _INVALID.search(seq)
            if bad:
                raise InputError(f"{records.source}: {records.label(i)} has invalid character {bad.group()!r} at "
                                 f"position {bad.start() + 1} (allowed: A, C, G, T, N)") from None
        raise


def fit_length(records: SequenceRecords, length: int | None, pad_or_crop: bool) -> tuple[list[str], list[str]]:
    """Sequences at the model's length, and what was done to each ("", "cropped", "padded").

    Without `pad_or_crop` a sequence of another length is refused, naming it; with it, longer
    sequences are centre-cropped and shorter ones padded with N on both sides.
    """
    sequences = records.sequences
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    if length is None:
        other = np.flatnonzero(lengths != lengths[0])
        if other.size:
            i = int(other[0])
            raise InputError(f"{records.source}: {records.label(i)} is {lengths[i]} bp but {records.label(0)} is "
                             f"{lengths[0]} bp; give sequences of one length, or --sequence_length with --pad_or_crop")
        return list(sequences), [""] * len(sequences)
    wrong = np.flatnonzero(lengths != length)
    if wrong.size and not pad_or_crop:
        i = int(wrong[0])
        raise InputError(f"{records.source}: {records.label(i)} is {lengths[i]} bp but the model expects {length} bp "
                         f"({wrong.size} of {len(sequences)} sequences differ); --pad_or_crop centre-crops longer "
                         "and N-pads shorter sequences")
    fitted, actions = list(sequences), [""] * len(sequences)
    for i in wrong.tolist():
        seq = sequences[i]
        if len(seq) > length:
            start = (len(seq) - length) // 2
            fitted[i], actions[i] = seq[start:start + length], "cropped"
        else:
            left = (length - len(seq)) // 2
            fitted[i], actions[i] = "N" * left + seq + "N" * (length - len(seq) - left), "padded"
    if wrong.size:
        cropped = actions.count("cropped")
        print(f"[predict] {cropped} sequence(s) centre-cropped and {wrong.size - cropped} N-padded to {length} bp",
              file=sys.stderr)
    return fitted, actions


# --- predicting ----------------------------------------------------------------------------------

def output_columns(spec: HeadSpec, prefix: str) -> list[str]:
    """Prediction column names of one head (one per logit)."""
    if spec.kind == GROUPED_MULTICLASS:
        return [f"{prefix}{o}_class{c}" for o in spec.output_names for c in range(spec.num_classes)]
    return [f"{prefix}{o}" for o in spec.output_names]


@dataclass(frozen=True)
class PredictOptions:
    """How `predict_sequences` predicts.

    heads: heads to predict (default all); batch_size; device (default: a GPU when there is one);
    sequence_length: expected length (default: the checkpoint's); pad_or_crop: centre-crop or
    N-pad sequences of other lengths; probabilities: classifier probabilities instead of logits;
    meme_file / dnabert_path: override the motif file / tokenizer of the checkpoint's input
    recipe; progress: show a progress bar."""

    heads: Sequence[str] | None = None
    batch_size: int = 256
    device: str | None = None
    sequence_length: int | None = None
    pad_or_crop: bool = False
    probabilities: bool = False
    meme_file: str | None = None
    dnabert_path: str | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {self.batch_size}")


def run_checkpoint(run_directory: str) -> str:
    """The best checkpoint of a trained run folder (`saved_models/<run>` or its `default/`)."""
    directory = os.path.abspath(run_directory.rstrip("/"))
    if os.path.basename(directory) == "default":
        directory = os.path.dirname(directory)
    if not os.path.isdir(directory):
        raise InputError(f"{run_directory}: run folder not found")
    root = os.path.dirname(os.path.dirname(directory))
    return runs.best_checkpoint(root, os.path.basename(directory), "max")


def _expected_length(model, heads: list[str], sequence_length: int | None, path: str) -> int | None:
    if sequence_length:
        return int(sequence_length)
    if model.input_kind != "onehot":
        return None  # token / motif-count models read sequences of any length
    known = {h: model.sequence_lengths[h] for h in heads if h in model.sequence_lengths}
    if len(set(known.values())) > 1:
        raise InputError(f"{path}: heads {', '.join(f'{h} ({n} bp)' for h, n in known.items())} were trained on "
                         "different sequence lengths; choose heads of one length with --heads")
    if known:
        return next(iter(known.values()))
    return model.backbone.input_length


def predict_sequences(checkpoints: str | Sequence[str], sequences: Sequence[str] | SequenceRecords,
                      options: PredictOptions | None = None, ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Predictions of one checkpoint, or the mean over several (a seed ensemble), per sequence.

    Sequences are turned into each model's inputs by the input recipe saved in its checkpoint,
    exactly as in training; no training flag is needed.

    Parameters
    ----------
    checkpoints : one checkpoint path or several (averaged).
    sequences : DNA strings, or records read by `read_sequences`.
    options : heads, batch size, device, length handling, probabilities, recipe overrides.
    ids : sequence ids to carry into the table (plain sequences only).

    Returns
    -------
    A table with the ids (when given), the sequences as given and the prediction columns
    (`pred_<output>`, or `pred_<head>_<output>` with several heads). Classifier heads give
    logits, or probabilities (then averaged over checkpoints).
    """
    from promoter_modelling.checkpoints import load_model
    from promoter_modelling.inference import predict_inputs

    options = options or PredictOptions()
    paths = [checkpoints] if isinstance(checkpoints, str) else list(checkpoints)
    if not paths:
        raise InputError("no checkpoint given")
    records = sequences if isinstance(sequences, SequenceRecords) else SequenceRecords(
        list(sequences), list(ids) if ids is not None else None, "id" if ids is not None else None)
    if records.ids is not None and len(records.ids) != len(records.sequences):
        raise InputError(f"{len(records.ids)} ids for {len(records.sequences)} sequences")
    if not records.sequences:
        raise InputError(f"{records.source}: no sequences to predict")
    check_bases(records)
    check_device(options.device)
    warn_duplicate_ids(records)
    heads, sequence_length = options.heads, options.sequence_length
    total: dict[str, np.ndarray] = {}
    inputs_by_recipe: dict[str, np.ndarray] = {}
    specs: list[HeadSpec] = []
    fitted: list[str] = []
    actions: list[str] = []
    length: int | None = None
    for n, path in enumerate(paths):
        with warnings.catch_warnings():  # metric objects built with the model warn about memory use
            warnings.filterwarnings("ignore", message=".*save all targets and predictions.*")
            model = load_model(path)
        model_specs = {s.name: s for s in model.head_specs}
        if n == 0:
            chosen = list(heads) if heads else list(model_specs)
            unknown = [h for h in chosen if h not in model_specs]
            if unknown:
                raise InputError(f"{path}: the model has no head {', '.join(unknown)} (its heads: "
                                 f"{', '.join(model_specs)})")
            specs = [model_specs[h] for h in chosen]
            length = _expected_length(model, chosen, sequence_length, path)
            fitted, actions = fit_length(records, length, options.pad_or_crop)
        else:
            differ = [s.name for s in specs if s.name not in model_specs
                      or model_specs[s.name].output_names != s.output_names or model_specs[s.name].kind != s.kind]
            if differ:
                raise InputError(f"{path}: head {', '.join(differ)} differs from {paths[0]} (an ensemble needs "
                                 "checkpoints trained on the same tasks)")
            other = _expected_length(model, [s.name for s in specs], sequence_length, path)
            if other is not None and length is not None and other != length:
                raise InputError(f"{path}: trained on {other}-bp sequences but {paths[0]} on {length} bp")
        recipe = model.input_recipe.with_overrides(meme_file=options.meme_file, dnabert_path=options.dnabert_path)
        key = json.dumps(recipe.identity(), sort_keys=True)  # ensemble members reading alike share inputs
        if key not in inputs_by_recipe:
            inputs_by_recipe[key] = recipe.model_inputs(fitted)
        inputs = inputs_by_recipe[key]
        out = predict_inputs(model, inputs, batch_size=options.batch_size, device=options.device,
                             heads=[s.name for s in specs], progress=options.progress)
        for spec in specs:
            values = out[spec.name].astype(np.float64)
            values = head_probabilities(spec, values) if options.probabilities else values
            total[spec.name] = total.get(spec.name, 0.0) + values
        del model
    columns: dict = {}  # built in one step: heads can have hundreds of outputs
    if records.ids is not None:
        columns[records.id_column or "id"] = records.ids
    columns["sequence"] = records.sequences
    if options.pad_or_crop:
        columns["length_adjustment"] = actions
    for spec in specs:
        prefix = "pred_" if len(specs) == 1 else f"pred_{spec.name}_"
        mean = (total[spec.name] / len(paths)).astype(np.float32)
        columns.update({column: mean[:, i] for i, column in enumerate(output_columns(spec, prefix))})
    return pd.DataFrame(columns)


OUTPUT_FORMATS = {".csv": "csv", ".csv.gz": "csv", ".tsv": "tsv", ".tsv.gz": "tsv", ".parquet": "parquet"}


def output_format(path: str) -> str:
    """"csv", "tsv" or "parquet" from the output file name; other names are refused (a .xlsx or
    .feather file written as CSV text would be unreadable by what its name promises)."""
    lower = path.lower()
    for suffix, kind in sorted(OUTPUT_FORMATS.items(), key=lambda item: -len(item[0])):
        if lower.endswith(suffix):
            return kind
    raise InputError(f"{path}: unknown output format; name the file .csv, .tsv, .parquet, .csv.gz or .tsv.gz")


def check_output(output: str, inputs: Sequence[str] = ()) -> str:
    """Refuse, before anything is computed or written, an output path that is a directory, has an
    unknown extension, or is one of the input files (also through another path or a symlink).
    Returns the output format."""
    if output.endswith(("/", os.sep)) or os.path.isdir(output):
        raise InputError(f"{output}: is a directory; give a file name, e.g. "
                         f"{os.path.join(output, 'predictions.csv')}")
    for path in inputs:
        same = os.path.realpath(output) == os.path.realpath(path)
        if not same and os.path.exists(output) and os.path.exists(path):
            same = os.path.samefile(output, path)
        if same:
            raise InputError(f"{output}: is the input file {path}; writing the predictions there would "
                             "overwrite the sequences; choose another output file")
    return output_format(output)


def write_predictions(frame: pd.DataFrame, path: str) -> str:
    """Write predictions atomically: Parquet for .parquet, tab-separated for .tsv(.gz), CSV for
    .csv(.gz); other names are refused (see `output_format`)."""
    kind = output_format(path)
    if kind == "parquet":
        save_parquet(frame, path)
    else:
        save_table(frame, path, sep="\t" if kind == "tsv" else ",")
    return path
