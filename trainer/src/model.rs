//! The GPT-style decoder-only Transformer: pre-LayerNorm, rotary positions, GELU MLP,
//! causal attention through `scaled_dot_product_attention`, tied unembedding, fan-in init.
//! Parameter names follow nanoGPT so PyTorch loads the safetensors file directly.
use tch::nn::{Init, Path};
use tch::{Device, Reduction, Tensor};

pub use ladder_core::limits::MAX_VOCAB;
pub use ladder_core::shape::Shape;

use crate::error::{Result, TrainerError};
use crate::rope::Rope;

struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// Weights drawn with std `gain / sqrt(d_in)`.
    fn new(p: Path, d_in: i64, d_out: i64, gain: f64) -> Self {
        let weight = p.var("weight", &[d_out, d_in], Init::Randn { mean: 0.0, stdev: fan_in_std(d_in, gain) });
        let bias = p.var("bias", &[d_out], Init::Const(0.0));
        Self { weight, bias }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_linear(&self.weight, Some(&self.bias))?)
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    d: i64,
}

impl LayerNorm {
    fn new(p: Path, d: i64) -> Self {
        Self { weight: p.var("weight", &[d], Init::Const(1.0)), bias: p.var("bias", &[d], Init::Const(0.0)), d }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_layer_norm([self.d], Some(&self.weight), Some(&self.bias), 1e-5, true)?)
    }
}

struct Block {
    ln_1: LayerNorm,
    c_attn: Linear,
    attn_proj: Linear,
    ln_2: LayerNorm,
    c_fc: Linear,
    mlp_proj: Linear,
    n_heads: i64,
}

impl Block {
    fn new(p: Path, s: &Shape) -> Self {
        // As GPT-2, residual projections are scaled by 1/sqrt(2·n_layer).
        let proj_gain = 1.0 / (2.0 * s.n_layer as f64).sqrt();
        let attn = &p / "attn";
        let mlp = &p / "mlp";
        Self {
            ln_1: LayerNorm::new(&p / "ln_1", s.d_model),
            c_attn: Linear::new(&attn / "c_attn", s.d_model, 3 * s.d_model, 1.0),
            attn_proj: Linear::new(&attn / "c_proj", s.d_model, s.d_model, proj_gain),
            ln_2: LayerNorm::new(&p / "ln_2", s.d_model),
            c_fc: Linear::new(&mlp / "c_fc", s.d_model, s.d_ff, 1.0),
            mlp_proj: Linear::new(&mlp / "c_proj", s.d_ff, s.d_model, proj_gain),
            n_heads: s.n_heads,
        }
    }

    fn forward(&self, x: &Tensor, rope: &Rope) -> Result<Tensor> {
        let (b, t, d) = x.size3()?;
        let h = self.n_heads;
        let qkv = self.c_attn.forward(&self.ln_1.forward(x)?)?;
        let (q, k, v) = rope.heads(&qkv, h)?;
        let y = Tensor::f_scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, true, None, false)?;
        let y = y.f_transpose(1, 2)?.f_contiguous()?.f_view([b, t, d])?;
        let x = x.f_add(&self.attn_proj.forward(&y)?)?;
        let m = self.c_fc.forward(&self.ln_2.forward(&x)?)?.f_gelu("tanh")?;
        Ok(x.f_add(&self.mlp_proj.forward(&m)?)?)
    }
}

/// `gain / sqrt(fan_in)`: GPT-2's fixed 0.02 is 1/sqrt(d) at d ≈ 2500; at the widths of a CPU
/// sweep (16 to 160) it starves attention of signal, and the loss sits on its bigram plateau for
/// hundreds of steps. Embeddings take fan-in d_model, so tied logits start with unit scale.
fn fan_in_std(fan_in: i64, gain: f64) -> f64 {
    gain / (fan_in as f64).sqrt()
}

/// The model; its variables live in the caller's `VarStore`.
pub struct Gpt {
    wte: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    rope: Rope,
    pub shape: Shape,
}

impl Gpt {
    /// Builds the variables under `root` in a fixed order, so a seed fixes the init, and the
    /// rotary tables for n_ctx positions on `device`, where the forward runs (the store may be
    /// initialised on the CPU and moved there).
    pub fn new(root: &Path, shape: Shape, device: Device) -> Result<Self> {
        let tr = root / "transformer";
        let emb = Init::Randn { mean: 0.0, stdev: fan_in_std(shape.d_model, 1.0) };
        let wte = (&tr / "wte").var("weight", &[shape.vocab, shape.d_model], emb);
        let h = &tr / "h";
        let blocks = (0..shape.n_layer).map(|i| Block::new(&h / i, &shape)).collect();
        let ln_f = LayerNorm::new(&tr / "ln_f", shape.d_model);
        let rope = Rope::new(shape.n_ctx, shape.d_head(), device)?;
        Ok(Self { wte, blocks, ln_f, rope, shape })
    }

    /// Logits `[B, T, vocab]` for token ids `[B, T]`, T ≤ n_ctx.
    pub fn forward(&self, idx: &Tensor) -> Result<Tensor> {
        let (_, t) = idx.size2()?;
        if t > self.shape.n_ctx {
            return Err(TrainerError::invalid("input", format!("sequence of {t} exceeds n_ctx {}", self.shape.n_ctx)));
        }
        let tok = Tensor::f_embedding(&self.wte, idx, -1, false, false)?;
        let mut x = tok;
        for block in &self.blocks {
            x = block.forward(&x, &self.rope)?;
        }
        let x = self.ln_f.forward(&x)?;
        Ok(x.f_linear::<&Tensor>(&self.wte, None)?)
    }

    /// Mean next-token cross-entropy in nats.
    pub fn loss(&self, idx: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let logits = self.forward(idx)?;
        let v = self.shape.vocab;
        Ok(logits.f_view([-1, v])?.f_cross_entropy_loss::<Tensor>(
            &targets.f_view([-1])?,
            None,
            Reduction::Mean,
            -100,
            0.0,
        )?)
    }
}

/// Whether a named parameter gets weight decay: matrices and embeddings do, biases and norms do not.
pub fn decays(param: &Tensor) -> bool {
    param.dim() >= 2
}
