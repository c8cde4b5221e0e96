import torch


def test_tiny_lm_scores_single_token_answers(tiny_lm):
    model, tokenizer = tiny_lm
    assert len(tokenizer.encode("1", add_special_tokens=False)) == 1
    assert len(tokenizer.encode("2", add_special_tokens=False)) == 1
    ids = tokenizer("Preferred Summary=", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tokenizer))
