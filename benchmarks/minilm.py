"""A MiniLM-class sentence encoder built offline: BERT config of all-MiniLM-L6-v2's shape with
seeded random weights, plus a WordPiece tokenizer built with the `tokenizers` library from a
small vocabulary (no hub access). Used by the fix benchmark and the reproduction script.

Shape (MiniLM-L6): 6 layers, hidden 384, 12 heads, intermediate 1536, vocabulary 30522,
512 positions: ~22.7M parameters, ~91 MB of fp32 safetensors. The word embedding
(30522 x 384, 47 MB) is half the bytes, which is why int8 must cover Gather to reach ~0.3x.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# A built-in text sample: sentences of very different lengths, so that batches padded to the
# longest sentence (or to a fixed length) carry real padding.
SENTENCES = (
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog near the river bank in the early morning light.",
    "Hello world.",
    "Model quantization reduces the size of a neural network by storing weights in eight bits.",
    "It rained all day, so the match was moved to next week and the fans went home early.",
    "Where is the nearest train station?",
    "The report lists every layer that was kept in full precision and why.",
    "Please restart the server after the update has been installed.",
    "Fresh bread smells wonderful.",
    "Attention masks tell the encoder which tokens are padding and must be ignored.",
    "She played the violin at the concert, and the audience stood up to applaud for a long time.",
    "Stocks fell sharply on Monday.",
    "The children built a small boat out of old wooden boxes and sailed it across the pond.",
    "Is this the right way to the museum?",
    "A sentence embedding maps text to a vector so that similar meanings land close together.",
    "Turn left at the second light.",
    "The library opens at nine in the morning and closes at six in the evening on weekdays.",
    "Coffee or tea?",
    "Our team fixed the bug in the parser that crashed on empty input files last night.",
    "Mountains covered in snow rose above the quiet valley where the old farmhouse stood.",
    "He forgot his keys again.",
    "The new phone has a larger battery, a brighter screen and a faster processor than before.",
    "Write tests before you change the code.",
    "Birds migrate south when the days become shorter and the nights grow colder in autumn.",
    "Thank you very much for your help with the move.",
    "The committee will publish its decision after the meeting on Thursday afternoon.",
    "Water boils at one hundred degrees at sea level.",
    "My grandmother tells the best stories about her childhood in a small fishing village.",
    "Do not feed the animals.",
    "A padded batch mixes short and long sentences, and the short ones carry many pad tokens.",
    "The museum displays paintings, sculptures and ancient coins from many different centuries.",
    "Let us meet for lunch tomorrow.",
)


def _vocab(vocab_size: int) -> dict[str, int]:
    """WordPiece vocabulary: BERT's special tokens, the sample's words, characters and their
    `##` continuations, then filler tokens up to `vocab_size` (ids the tokenizer can emit span
    only the first few hundred, as with a real vocabulary on a small text)."""
    import re

    tokens = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w.lower() for s in SENTENCES for w in re.findall(r"\w+|[^\w\s]", s)})
    chars = sorted({c for w in words for c in w})
    for tok in words + chars + [f"##{c}" for c in chars]:
        if tok not in tokens:
            tokens.append(tok)
    tokens += [f"[filler{i}]" for i in range(vocab_size - len(tokens))]
    return {t: i for i, t in enumerate(tokens[:vocab_size])}


def build_tokenizer(vocab_size: int = 30522) -> Any:
    """A BertTokenizerFast around a WordPiece `tokenizers.Tokenizer` (lower-casing, BERT
    pre-tokenizer, [CLS] ... [SEP] template)."""
    import transformers
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    vocab = _vocab(vocab_size)
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece()
    return transformers.BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def build_minilm(
    folder: Path,
    layers: int = 6,
    hidden: int = 384,
    heads: int = 12,
    intermediate: int = 1536,
    vocab_size: int = 30522,
    seed: int = 0,
) -> Path:
    """Write a Hugging Face model directory (config.json, model.safetensors, tokenizer files)
    of a BertModel with seeded random weights; returns the folder."""
    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()
    config = transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=512,
        architectures=["BertModel"],
    )
    torch.manual_seed(seed)
    model = transformers.BertModel(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    build_tokenizer(vocab_size).save_pretrained(str(folder))
    return folder


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Sentence embeddings: the mean of token states where the mask is 1 (numpy)."""
    import numpy as np

    m = mask[..., None].astype(hidden.dtype)
    return (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)


def cosines(a: Any, b: Any) -> Any:
    """Per-row cosine similarity of two [n, d] arrays."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def padded_batches(tokenizer: Any, n: int = 32) -> dict[str, dict[str, Any]]:
    """Two padded batches of n sentences (numpy int64): to the longest and to 128 tokens."""
    sents = [SENTENCES[i % len(SENTENCES)] for i in range(n)]
    return {
        "longest": dict(tokenizer(sents, padding="longest", return_tensors="np")),
        "max128": dict(tokenizer(sents, padding="max_length", max_length=128, return_tensors="np")),
    }
