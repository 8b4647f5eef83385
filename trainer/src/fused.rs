//! K models of one shape trained as one batched model (horizontally fused training, after HFTA):
//! every parameter is stacked into a `[K, …]` leaf, the token tables are indexed with per-member
//! offsets, the linear layers are batched matmuls (`baddbmm`), attention runs over K·B sequences,
//! and each member's loss is its own cross-entropy, so the sum's gradient is each member's own.
//!
//! On the CPU the result equals K separate models bit for bit: every batched kernel computes each
//! member's rows exactly as the unbatched kernel does. LayerNorm is the exception — a per-member
//! affine would reduce its weight gradients in another order — so it runs per member on views.
use tch::{Device, Kind, Reduction, Tensor};

use crate::error::{Result, TrainerError};
use crate::model::Shape;
use crate::rope::Rope;

/// The stacked parameters in name order (the order of a single model's `VarStore`).
pub struct FusedGpt {
    pub shape: Shape,
    /// Members in the stack.
    pub k: i64,
    pub stacked: Vec<(String, Tensor)>,
    rope: Rope,
}

/// A stacked parameter by name.
fn get<'a>(stacked: &'a [(String, Tensor)], name: &str) -> Result<&'a Tensor> {
    stacked
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .ok_or_else(|| TrainerError::invalid("fused model", format!("no parameter {name}")))
}

impl FusedGpt {
    /// Stacks the members' parameters (each in name order, same names and shapes) into leaves on
    /// `device`.
    pub fn stack(shape: Shape, members: &[Vec<(String, Tensor)>], device: Device) -> Result<Self> {
        let first = members.first().ok_or_else(|| TrainerError::invalid("fused model", "no members"))?;
        let _guard = tch::no_grad_guard();
        let mut stacked = Vec::with_capacity(first.len());
        for (i, (name, _)) in first.iter().enumerate() {
            let parts: Vec<&Tensor> = members.iter().map(|m| &m[i].1).collect();
            let t = Tensor::f_stack(&parts, 0)?.f_to_device(device)?.f_detach()?.set_requires_grad(true);
            stacked.push((name.clone(), t));
        }
        let rope = Rope::new(shape.n_ctx, shape.d_head(), device)?;
        Ok(Self { shape, k: members.len() as i64, stacked, rope })
    }

    /// Member `i`'s views of the stacked parameters, in name order.
    pub fn member_views(&self, i: i64) -> Result<Vec<(String, Tensor)>> {
        self.stacked.iter().map(|(n, t)| Ok((n.clone(), t.f_select(0, i)?))).collect()
    }

    /// Member `i`'s slices of the stacked gradients, in name order (undefined before a backward).
    pub fn member_grads(&self, i: i64) -> Result<Vec<Tensor>> {
        self.stacked
            .iter()
            .map(|(_, t)| {
                let g = t.grad();
                if g.defined() { Ok(g.f_select(0, i)?) } else { Ok(g) }
            })
            .collect()
    }

    /// Zeroes the stacked gradients.
    pub fn zero_grads(&self) -> Result<()> {
        let _guard = tch::no_grad_guard();
        for (_, t) in &self.stacked {
            let mut g = t.grad();
            if g.defined() {
                let _ = g.f_zero_()?;
            }
        }
        Ok(())
    }

    /// Keeps only the members at `keep` (in that order), as new leaves.
    pub fn retain(&mut self, keep: &[i64]) -> Result<()> {
        let _guard = tch::no_grad_guard();
        let device = self.stacked.first().map(|(_, t)| t.device()).unwrap_or(Device::Cpu);
        let idx = Tensor::f_from_slice(keep)?.f_to_device(device)?;
        for (_, t) in self.stacked.iter_mut() {
            *t = t.f_index_select(0, &idx)?.f_detach()?.set_requires_grad(true);
        }
        self.k = keep.len() as i64;
        Ok(())
    }

    fn p(&self, name: &str) -> Result<&Tensor> {
        get(&self.stacked, name)
    }

    /// `x [K, M, d_in] · Wᵀ + b` for stacked `W [K, d_out, d_in]`, `b [K, d_out]`.
    fn linear(&self, x: &Tensor, prefix: &str) -> Result<Tensor> {
        let w = self.p(&format!("{prefix}.weight"))?;
        let b = self.p(&format!("{prefix}.bias"))?;
        Ok(b.f_unsqueeze(1)?.f_baddbmm(x, &w.f_transpose(1, 2)?, 1.0, 1.0)?)
    }

    /// LayerNorm per member, on views: the batched affine would sum its gradients differently.
    fn layer_norm(&self, x: &Tensor, prefix: &str) -> Result<Tensor> {
        let w = self.p(&format!("{prefix}.weight"))?;
        let b = self.p(&format!("{prefix}.bias"))?;
        let d = self.shape.d_model;
        let xs = x.f_unbind(0)?;
        let (ws, bs) = (w.f_unbind(0)?, b.f_unbind(0)?);
        let outs = xs
            .iter()
            .zip(ws.iter().zip(&bs))
            .map(|(xk, (wk, bk))| Ok(xk.f_layer_norm([d], Some(wk), Some(bk), 1e-5, true)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::f_stack(&outs, 0)?)
    }

    /// Logits `[K, B·T, vocab]` for token ids `[K, B, T]`.
    pub fn forward(&self, idx: &Tensor) -> Result<Tensor> {
        let (k, b, t) = idx.size3()?;
        let s = &self.shape;
        if k != self.k || t > s.n_ctx {
            return Err(TrainerError::invalid(
                "input",
                format!("ids of shape [{k}, {b}, {t}] for {} members of n_ctx {}", self.k, s.n_ctx),
            ));
        }
        let (d, v, h) = (s.d_model, s.vocab, s.n_heads);
        let wte = self.p("transformer.wte.weight")?;
        let offsets = Tensor::f_arange_start_step(0, k * v, v, (Kind::Int64, idx.device()))?.f_view([k, 1, 1])?;
        let tok = Tensor::f_embedding(&wte.f_reshape([k * v, d])?, &idx.f_add(&offsets)?, -1, false, false)?;
        let mut x = tok.f_view([k, b * t, d])?;
        for i in 0..s.n_layer {
            let blk = format!("transformer.h.{i}");
            let qkv = self.linear(&self.layer_norm(&x, &format!("{blk}.ln_1"))?, &format!("{blk}.attn.c_attn"))?;
            let (q, kk, vv) = self.rope.heads(&qkv.f_view([k * b, t, 3 * d])?, h)?;
            let y = Tensor::f_scaled_dot_product_attention(&q, &kk, &vv, None::<Tensor>, 0.0, true, None, false)?;
            let y = y.f_transpose(1, 2)?.f_contiguous()?.f_view([k, b * t, d])?;
            x = x.f_add(&self.linear(&y, &format!("{blk}.attn.c_proj"))?)?;
            let m = self.linear(&self.layer_norm(&x, &format!("{blk}.ln_2"))?, &format!("{blk}.mlp.c_fc"))?;
            x = x.f_add(&self.linear(&m.f_gelu("tanh")?, &format!("{blk}.mlp.c_proj"))?)?;
        }
        let x = self.layer_norm(&x, "transformer.ln_f")?;
        Ok(x.f_bmm(&wte.f_transpose(1, 2)?)?)
    }

    /// Each member's mean next-token cross-entropy in nats, for ids and targets `[K, B, T]`.
    pub fn losses(&self, idx: &Tensor, targets: &Tensor) -> Result<Vec<Tensor>> {
        let logits = self.forward(idx)?;
        let v = self.shape.vocab;
        let ys = targets.f_unbind(0)?;
        logits
            .f_unbind(0)?
            .iter()
            .zip(&ys)
            .map(|(l, y)| {
                Ok(l.f_view([-1, v])?.f_cross_entropy_loss::<Tensor>(
                    &y.f_reshape([-1])?,
                    None,
                    Reduction::Mean,
                    -100,
                    0.0,
                )?)
            })
            .collect()
    }
}
