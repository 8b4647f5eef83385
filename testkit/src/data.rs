//! Token data for tests, and the one builder of a dataset upload.
use ladder_proto::pb;

/// `n` tokens counting up modulo `modulo`, as uint16 little-endian bytes.
pub fn cycle_tokens(n: usize, modulo: u16) -> Vec<u8> {
    (0..n).flat_map(|i| ((i % usize::from(modulo.max(1))) as u16).to_le_bytes()).collect()
}

/// `n` tokens of a first-order Markov source over 32 symbols (a tiny model learns it within a
/// few dozen steps), as uint16 little-endian bytes; `state` carries the generator across calls.
pub fn markov_tokens(n: usize, state: &mut (u64, u16)) -> Vec<u8> {
    (0..n)
        .flat_map(|_| {
            state.0 = state.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            state.1 = ((u64::from(state.1) * 7 + (state.0 >> 61)) % 32) as u16;
            state.1.to_le_bytes()
        })
        .collect()
}

/// The messages of a dataset registration: the header, then train's bytes, then val's.
pub fn upload(name: &str, train: Vec<u8>, val: Vec<u8>, vocab: u32) -> Vec<pb::DatasetUpload> {
    let header = pb::DatasetHeader {
        name: name.into(),
        meta_json: String::new(),
        train_bytes: train.len() as u64,
        val_bytes: val.len() as u64,
        vocab,
    };
    let bytes = |file: &str, data| pb::DatasetUpload {
        part: Some(pb::dataset_upload::Part::Bytes(pb::DatasetBytes { file: file.into(), data })),
    };
    vec![
        pb::DatasetUpload { part: Some(pb::dataset_upload::Part::Header(header)) },
        bytes("train", train),
        bytes("val", val),
    ]
}
