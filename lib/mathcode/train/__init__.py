"""Phase 3 — continued pretraining with QLoRA (4-bit NF4 base + LoRA adapters).

One concern per module:
  ``input_files`` which corpus files are trained on (basic data, with or without translated code; or explicit files);
  ``packing``  tokenize, split held-out by document, pack into fixed-length blocks joined by EOS;
  ``memory``   estimate the training footprint from the config alone, before any weights are loaded;
  ``qlora``    load the 4-bit base, check LoRA targets, attach adapters, pick the optimizer;
  ``trainer``  transformers ``Trainer`` wiring: schedule, checkpoints, resume, metrics, adapter folder;
  ``export``   merged export (dequantized base + adapter) for vLLM or plain transformers;
  ``report``   the phase's figures, tables and key numbers;
  ``launch``   the same calls as a script for several processes (accelerate launch / torchrun).
"""
