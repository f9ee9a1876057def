"""Behavioural evaluations of language models: prompt sets, framings, a batched scorer and paired statistics.

- `words`: the word-level tokenizer of the models the platform trains on synthetic dialogues.
- `prompts`: the default framings and how a prompt is put together (with a chat template or without).
- `prompt_sets`: prompt sets by reference (uploaded JSONL/CSV files, or the sets the project ships).
- `scoring`: a loaded language model, scored in padded batches (answer-option log-probabilities) or sampled.
- `stats`: paired tests and intervals (McNemar's exact test, a paired bootstrap with a sign-flip test, Wilson,
  Clopper-Pearson and Newcombe intervals; a reported interval excludes zero only when its test rejects).
- `dialogues`: synthetic dialogues with a built-in effect of known size, the known answer the tests check.
"""
