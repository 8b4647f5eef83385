//! Rotary positions: position 0 is left as it is, every rotation keeps a head's norm, and a
//! query–key score depends only on the offset between their positions, at any t ≤ n_ctx.
use ladder_trainer::rope::Rope;
use tch::{Device, Kind, Tensor};

const H: i64 = 2;
const D_HEAD: i64 = 8;
const N_CTX: i64 = 16;

/// qkv `[1, t, 3·d]` whose q, k and v are the same vectors at every position.
fn same_at_every_position(t: i64) -> Tensor {
    tch::manual_seed(7);
    Tensor::randn([1, 1, 3 * H * D_HEAD], (Kind::Float, Device::Cpu)).expand([1, t, 3 * H * D_HEAD], false).contiguous()
}

fn at(x: &Tensor, i: &[i64]) -> f64 {
    x.double_value(i)
}

#[test]
fn scores_depend_only_on_the_offset_and_norms_are_kept() {
    let rope = Rope::new(N_CTX, D_HEAD, Device::Cpu).expect("tables");
    for t in [N_CTX, 9] {
        let qkv = same_at_every_position(t);
        let (q, k, v) = rope.heads(&qkv, H).expect("heads");
        assert_eq!(q.size(), [1, H, t, D_HEAD]);
        let raw_q = qkv.narrow(2, 0, H * D_HEAD).view([1, t, H, D_HEAD]).transpose(1, 2);
        // Position 0 is not rotated; v never is.
        let diff = (q.narrow(2, 0, 1) - raw_q.narrow(2, 0, 1)).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "position 0 moved by {diff}");
        let raw_v = qkv.narrow(2, 2 * H * D_HEAD, H * D_HEAD).view([1, t, H, D_HEAD]).transpose(1, 2);
        assert!(v.equal(&raw_v));
        // GPT-NeoX's direction: at position 1 the first pair turns by 1 radian,
        // (x_0, x_half) -> (x_0·cos 1 − x_half·sin 1, x_half·cos 1 + x_0·sin 1).
        let (x0, xh) = (at(&raw_q, &[0, 0, 1, 0]), at(&raw_q, &[0, 0, 1, D_HEAD / 2]));
        let (c, s) = (1f64.cos(), 1f64.sin());
        assert!((at(&q, &[0, 0, 1, 0]) - (x0 * c - xh * s)).abs() < 1e-5);
        assert!((at(&q, &[0, 0, 1, D_HEAD / 2]) - (xh * c + x0 * s)).abs() < 1e-5);
        let norms = q.square().sum_dim_intlist(-1, false, Kind::Float);
        let raw_norms = raw_q.square().sum_dim_intlist(-1, false, Kind::Float);
        assert!((norms - raw_norms).abs().max().double_value(&[]) < 1e-4, "a rotation changed a norm");
        let scores = q.matmul(&k.transpose(-1, -2));
        for h in 0..H {
            for offset in [0, 1, 3] {
                let first = at(&scores, &[0, h, offset, 0]);
                for m in offset..t {
                    let s = at(&scores, &[0, h, m, m - offset]);
                    assert!((s - first).abs() < 1e-4, "head {h}: score at ({m}, {}) {s} vs {first}", m - offset);
                }
            }
            // Scores do change with the offset: positions are seen at all.
            assert!((at(&scores, &[0, h, 5, 0]) - at(&scores, &[0, h, 5, 5])).abs() > 1e-3);
        }
    }
}
