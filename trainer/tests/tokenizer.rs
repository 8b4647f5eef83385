//! Must show 5: tokenizer round trips, and GPT-2 BPE gives the published ids.
use ladder_trainer::tokenizer::Tokenizer;

const TEXT: &str = "Call me Ishmael. Some years ago—never mind how long precisely— café, 東京, 🚀\n\tend";

#[test]
fn byte_tokenizer_round_trips() {
    let t = Tokenizer::by_name("byte").expect("byte");
    let ids = t.encode(TEXT);
    assert_eq!(ids.len(), TEXT.len());
    assert_eq!(ids[0], u32::from(b'C'));
    assert_eq!(t.decode(&ids).expect("decode"), TEXT);
    assert_eq!(t.vocab_size(), 256);
}

#[test]
fn gpt2_bpe_gives_published_ids_and_round_trips() {
    let t = Tokenizer::by_name("gpt2").expect("gpt2");
    assert_eq!(t.vocab_size(), 50257);
    assert_eq!(t.encode("Hello world"), vec![15496, 995]);
    assert_eq!(t.encode("hello world"), vec![31373, 995]);
    assert_eq!(t.encode(" the"), vec![262]);
    assert_eq!(t.eot(), Some(50256));
    let ids = t.encode(TEXT);
    assert!(ids.len() < TEXT.len());
    assert_eq!(t.decode(&ids).expect("decode"), TEXT);
}

#[test]
fn unknown_names_and_out_of_range_ids_are_errors() {
    let e = Tokenizer::by_name("sentencepiece").expect_err("unknown").to_string();
    assert!(e.contains("unknown tokenizer \"sentencepiece\""), "{e}");
    let t = Tokenizer::by_name("gpt2").expect("gpt2");
    let e = t.decode(&[15496, 60000]).expect_err("out of range").to_string();
    assert!(e.contains("token id 60000 is out of range"), "{e}");
}

#[test]
fn gpt2_names_invalid_utf8_unless_lossy() {
    let t = Tokenizer::by_name("gpt2").expect("gpt2");
    let latin1 = b"caf\xe9 au lait";
    let e = t.encode_bytes(latin1, false).expect_err("not UTF-8").to_string();
    assert!(e.contains("not UTF-8 at byte 3"), "{e}");
    let ids = t.encode_bytes(latin1, true).expect("lossy");
    assert_eq!(t.decode(&ids).expect("decode"), "caf\u{FFFD} au lait");
}
