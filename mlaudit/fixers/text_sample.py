"""A small built-in English text sample for inputs of text models (no data set download).

Sentences of very different lengths, so that a batch padded to a fixed length carries real
padding: fidelity and parity of a text encoder are only meaningful with attention masks that
hide pad tokens.
"""

from __future__ import annotations

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


def texts(n: int) -> list[str]:
    """n texts: the sample first, then pairs of its sentences (longer, still varied)."""
    k = len(SENTENCES)
    out = []
    for i in range(n):
        if i < k:
            out.append(SENTENCES[i])
        else:
            out.append(f"{SENTENCES[i % k]} {SENTENCES[(i // k * 7 + i) % k]}")
    return out
