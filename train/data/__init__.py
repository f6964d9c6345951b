"""hybridzoo's data half: preparation (sources, tokenizer, shards, manifest) and loading (sampler, loader).

It imports only `models` and libraries, never the training half (`train.trainer` and friends) or
`eval`, so eval can read what prepare wrote without pulling in the trainer.
"""
