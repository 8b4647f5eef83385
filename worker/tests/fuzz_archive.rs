//! Fuzzing the checkpoint unpacker (proptest): arbitrary bytes, and real archives with arbitrary
//! bytes overwritten, never panic and never write outside the target folder.
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
}

fn outside_untouched(root: &std::path::Path) {
    let names: Vec<String> = std::fs::read_dir(root)
        .expect("ls")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    for n in names {
        assert!(["in.tar", "out", "src", "src.tar"].contains(&n.as_str()), "something escaped: {n}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_escape(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let tmp = tempfile::tempdir().expect("tmp");
        let tar = tmp.path().join("in.tar");
        std::fs::write(&tar, &bytes).expect("write");
        let _ = ladder_worker::archive::unpack(&tar, &tmp.path().join("out"));
        outside_untouched(tmp.path());
    }

    #[test]
    fn damaged_archives_never_escape(edits in prop::collection::vec((0usize..3000, any::<u8>()), 1..40)) {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).expect("mkdir");
        std::fs::write(src.join("state.json"), b"{\"step\": 3}").expect("write");
        std::fs::write(src.join("model.safetensors"), vec![1u8; 1500]).expect("write");
        let packed = tmp.path().join("src.tar");
        ladder_worker::archive::pack(&src, &packed).expect("pack");
        let mut bytes = std::fs::read(&packed).expect("read");
        for (at, b) in edits {
            if let Some(x) = bytes.get_mut(at) {
                *x = b;
            }
        }
        let tar = tmp.path().join("in.tar");
        std::fs::write(&tar, &bytes).expect("write");
        let _ = ladder_worker::archive::unpack(&tar, &tmp.path().join("out"));
        outside_untouched(tmp.path());
    }
}
