//! `cold info`: a bundle described for people: image, degradation, sampling defaults, generation,
//! network, training (with a fine-tune's lineage), graphs and files.

use cold_core::bundle::Bundle;

/// What `cold info` prints: the bundle's description, line by line.
pub fn describe(b: &Bundle) -> String {
    let m = &b.manifest;
    let mut s = String::new();
    s.push_str(&format!(
        "model        {} ({}, format v{})\n",
        m.name,
        b.dir.display(),
        m.format_version
    ));
    s.push_str(&format!(
        "image        {}x{}x{} (channels x height x width), values in [{}, {}]\n",
        m.image.channels,
        m.image.height,
        m.image.width,
        m.image.value_range[0],
        m.image.value_range[1]
    ));
    s.push_str(&format!("degradation  {}\n", m.degradation.describe()));
    if m.degradation.param_count() > 0 {
        s.push_str(&format!(
            "             per-image parameters: {} (degrade writes them to degradation.json)\n",
            m.degradation.param_names().join(", ")
        ));
    }
    if let Some(sm) = &m.sampling {
        s.push_str(&format!(
            "sampling     {} step{}{} by default ({})\n",
            sm.recommended_steps,
            if sm.recommended_steps == 1 { "" } else { "s" },
            if sm.self_ensemble {
                ", self-ensembled"
            } else {
                ""
            },
            sm.chosen_by
        ));
    }
    match m.mixture() {
        _ if m.degradation.transform.is_mix() => s.push_str(
            "generation   from z at T with the estimated-noise sampler (cold generate)\n",
        ),
        _ if m.degradation.transform.starts_from_params() => s.push_str(
            "generation   from D(0, T) with each sample's drawn parameters (its fill colour) and Algorithm 2 (cold generate)\n",
        ),
        Ok(g) => s.push_str(&format!(
            "generation   Gaussian mixture of {} component(s) over {}, fitted on {} images of {}\n",
            g.components.len(),
            match &g.subspace {
                Some(sp) => format!(
                    "{} principal components of D(x, {}) ({:.2}% of its variance; restored from t = {})",
                    sp.basis.len(),
                    sp.level,
                    100.0 * sp.explained,
                    sp.level
                ),
                None => "channel means".into(),
            },
            g.images,
            g.fitted_on
        )),
        Err(_) => s.push_str("generation   none (cold-train mixture adds one)\n"),
    }
    if m.network.config.classes.is_some() {
        let w = m.generation.as_ref().and_then(|g| g.guidance.as_ref());
        s.push_str(&match w {
            Some(w) => format!(
                "             by class: a class per sample drawn in the training proportions unless --class; guidance {} by default ({})\n",
                w.weight, w.chosen_by
            ),
            None => "             by class: a class per sample drawn in the training proportions unless --class; guidance 1 by default\n".into(),
        });
    }
    if let Some(t) = m.generation.as_ref().and_then(|g| g.temperature.as_ref()) {
        s.push_str(&format!(
            "             temperature {} by default ({})\n",
            t.value, t.chosen_by
        ));
    }
    s.push_str(&format!("network      {}\n", m.network.describe()));
    let t = &m.training;
    s.push_str(&format!(
        "training     {} steps on {} (batch {}, lr {}, EMA {}), final loss {}, {:.0} s on {}\n",
        t.steps,
        t.dataset,
        t.batch_size,
        t.learning_rate,
        t.ema_decay,
        t.final_loss
            .map(|l| format!("{l:.4}"))
            .unwrap_or_else(|| "n/a".into()),
        t.seconds,
        if t.backend.is_empty() {
            "?"
        } else {
            &t.backend
        }
    ));
    if let Some(k) = t.max_level {
        s.push_str(&format!(
            "             on levels 1..={k} only: restores (and generates) from t <= {k}\n"
        ));
    }
    if let Some(base) = &t.started_from {
        let weights = base
            .weights_sha256
            .as_deref()
            .map(|h| format!(" (weights.bin sha256 {})", h.get(..12).unwrap_or(h)))
            .unwrap_or_default();
        s.push_str(&format!(
            "             fine-tuned from a bundle{weights} trained {} steps ({:.0} s): {} steps, {:.0} s in all\n",
            base.total_steps(),
            base.total_seconds(),
            t.total_steps(),
            t.total_seconds()
        ));
    }
    let sizes = if m.format_version >= 2 {
        "symbolic batch, height and width".to_string()
    } else {
        format!(
            "{}x{} only (`cold-train reexport` writes them for any size)",
            m.image.height, m.image.width
        )
    };
    s.push_str(&format!(
        "graphs       opset {}, {sizes}; files (sha256 checked):\n",
        m.opset
    ));
    for name in b.file_names() {
        let size = std::fs::metadata(b.path(&name))
            .map(|md| md.len())
            .unwrap_or(0);
        s.push_str(&format!("  {name:<18} {:>10} bytes\n", size));
    }
    s.push_str(&format!("created by   {}\n", m.created_by));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_is_described_line_by_line() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-bundle");
        let s = describe(&Bundle::open(&dir, true).expect("fixture"));
        for want in [
            "model        tiny-bundle",
            "format v2",
            "degradation  gaussian blur, kernel 11x11",
            "generation   Gaussian mixture of 1 component(s)",
            "60388 parameters",
            "graphs       opset 21, symbolic batch, height and width",
            "  weights.bin",
        ] {
            assert!(s.contains(want), "{want} in\n{s}");
        }
        assert!(!s.contains("fine-tuned"), "{s}");
    }
}
