"""A byte-level BPE tokenizer trained on texts, wrapped as a transformers fast tokenizer with a chat template."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

BOS = "<|endoftext|>"
PAD = "<|pad|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [BOS, PAD, IM_START, IM_END]

# ChatML: `<|im_start|>role\ncontent<|im_end|>\n` per turn; the generation prompt opens an assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


# Pieces BPE may merge within: a run of letters, one digit, one whitespace character, a run of other symbols. A space
# is a token of its own (GPT-2's regex glues it to the next word), so a word is one token whether it follows a space
# in a prompt or opens an answer: a small model then carries a fact or a letter it read in the prompt or in
# pretraining straight into its reply. Single digits make every number spelt the same way.
PIECES = Regex(r"\p{L}+|\p{N}|\s|[^\s\p{L}\p{N}]+")
# The chat template's role names, added to the training texts so that each is one token when the vocabulary has room.
ROLE_NAMES = ("system", "user", "assistant") * 2


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on `texts`; pad, bos/eos and ChatML tokens included."""
    tokenizer = Tokenizer(models.BPE())
    split = pre_tokenizers.Split(PIECES, behavior="isolated")
    to_bytes = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([split, to_bytes])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte is encodable: no unknown tokens
        show_progress=False,
    )
    tokenizer.train_from_iterator(chain(texts, ROLE_NAMES), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=IM_END,  # a chat model stops at the end of its turn
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        model_max_length=1_000_000,
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
