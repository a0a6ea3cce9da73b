//! A small ONNX graph builder over the generated protobuf types: nodes with unique names, float
//! initializers stored as external data in one shared, 64-byte aligned weights file, small int64
//! constants inline.

use std::collections::HashMap;

use onnx_protobuf::tensor_proto::{DataLocation, DataType};
use onnx_protobuf::tensor_shape_proto::{Dimension, dimension};
use onnx_protobuf::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    type_proto,
};
use protobuf::{EnumOrUnknown, MessageField};

/// The opset the exported graphs use (Gelu needs 20; GroupNormalization semantics settled in 21).
pub const OPSET: i64 = 21;
/// ONNX IR version for opset 21.
pub(crate) const IR_VERSION: i64 = 10;
/// Alignment of every tensor in the weights file (lets the runtime map it and use it in place).
pub(crate) const ALIGN: usize = 64;

/// The shared external-data file: named float tensors at aligned offsets.
#[derive(Debug, Default)]
pub struct WeightStore {
    pub file_name: String,
    pub bytes: Vec<u8>,
    /// name -> (offset, length, dims)
    index: HashMap<String, (usize, usize, Vec<i64>)>,
}

impl WeightStore {
    pub fn new(file_name: &str) -> Self {
        WeightStore {
            file_name: file_name.into(),
            ..Default::default()
        }
    }

    /// Adds a tensor (once per name) and returns its location.
    fn add(&mut self, name: &str, data: &[f32], dims: &[i64]) -> (usize, usize) {
        if let Some((o, l, d)) = self.index.get(name) {
            assert_eq!(
                d.as_slice(),
                dims,
                "weight {name} added twice with different shapes"
            );
            return (*o, *l);
        }
        let pad = (ALIGN - self.bytes.len() % ALIGN) % ALIGN;
        self.bytes.extend(std::iter::repeat_n(0u8, pad));
        let offset = self.bytes.len();
        for v in data {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        let len = data.len() * 4;
        self.index.insert(name.into(), (offset, len, dims.to_vec()));
        (offset, len)
    }
}

/// An attribute value.
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Str(&'static str),
}

fn attribute(name: &str, v: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.into(),
        ..Default::default()
    };
    match v {
        Attr::Int(i) => {
            a.type_ = EnumOrUnknown::new(AttributeType::INT);
            a.i = i;
        }
        Attr::Ints(is) => {
            a.type_ = EnumOrUnknown::new(AttributeType::INTS);
            a.ints = is;
        }
        Attr::Float(f) => {
            a.type_ = EnumOrUnknown::new(AttributeType::FLOAT);
            a.f = f;
        }
        Attr::Str(s) => {
            a.type_ = EnumOrUnknown::new(AttributeType::STRING);
            a.s = s.as_bytes().to_vec();
        }
    }
    a
}

/// A dimension of a graph input or output: fixed or symbolic.
#[derive(Clone, Debug)]
pub enum Dim {
    Fixed(i64),
    Named(&'static str),
}

fn value_info(name: &str, elem: DataType, dims: &[Dim]) -> ValueInfoProto {
    let shape = TensorShapeProto {
        dim: dims
            .iter()
            .map(|d| Dimension {
                value: Some(match d {
                    Dim::Fixed(v) => dimension::Value::DimValue(*v),
                    Dim::Named(n) => dimension::Value::DimParam((*n).into()),
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let tensor = type_proto::Tensor {
        elem_type: elem as i32,
        shape: MessageField::some(shape),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        type_: MessageField::some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Builds one graph. Weights go to the shared [`WeightStore`].
pub struct GraphBuilder<'w> {
    pub graph: GraphProto,
    weights: &'w mut WeightStore,
    counter: usize,
    /// Names of initializers already attached to this graph.
    attached: HashMap<String, ()>,
    /// Inline constants by content, so a repeated shape is one initializer.
    consts: HashMap<String, String>,
    scope: Vec<String>,
}

impl<'w> GraphBuilder<'w> {
    pub fn new(name: &str, weights: &'w mut WeightStore) -> Self {
        GraphBuilder {
            graph: GraphProto {
                name: name.into(),
                ..Default::default()
            },
            weights,
            counter: 0,
            attached: HashMap::new(),
            consts: HashMap::new(),
            scope: Vec::new(),
        }
    }

    /// Runs `f` with node names prefixed by `name/` (readable graphs in Netron).
    pub fn scoped<T>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        self.scope.push(name.into());
        let out = f(self);
        self.scope.pop();
        out
    }

    fn fresh(&mut self, op: &str) -> String {
        self.counter += 1;
        let mut s = self.scope.join("/");
        if !s.is_empty() {
            s.push('/');
        }
        format!("{s}{op}_{}", self.counter)
    }

    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Dim]) -> String {
        self.graph.input.push(value_info(name, elem, dims));
        name.into()
    }

    /// Declares `value` as the graph output `name` (through an Identity node).
    pub fn output(&mut self, value: &str, name: &str, elem: DataType, dims: &[Dim]) {
        let node = self.fresh("Identity");
        self.graph.node.push(NodeProto {
            name: node,
            op_type: "Identity".into(),
            input: vec![value.into()],
            output: vec![name.into()],
            ..Default::default()
        });
        self.graph.output.push(value_info(name, elem, dims));
    }

    /// Adds a node with one output; returns the output name.
    pub fn op1(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        self.op(op, inputs, attrs).remove(0)
    }

    /// Adds a node with one output; returns `[output]`.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> Vec<String> {
        self.op_n(op, inputs, attrs, 1)
    }

    /// Adds a node with `outputs` outputs; returns their names.
    pub fn op_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        outputs: usize,
    ) -> Vec<String> {
        let name = self.fresh(op);
        let outs: Vec<String> = (0..outputs).map(|i| format!("{name}:{i}")).collect();
        self.graph.node.push(NodeProto {
            name: name.clone(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outs.clone(),
            attribute: attrs.into_iter().map(|(n, v)| attribute(n, v)).collect(),
            ..Default::default()
        });
        outs
    }

    /// A float weight stored as external data under a stable name.
    pub fn weight(&mut self, name: &str, data: &[f32], dims: &[usize]) -> String {
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        assert_eq!(
            data.len() as i64,
            dims.iter().product::<i64>(),
            "weight {name}: data and shape disagree"
        );
        if self.attached.contains_key(name) {
            return name.into();
        }
        let (offset, length) = self.weights.add(name, data, &dims);
        let kv = |k: &str, v: String| StringStringEntryProto {
            key: k.into(),
            value: v,
            ..Default::default()
        };
        self.graph.initializer.push(TensorProto {
            name: name.into(),
            dims,
            data_type: DataType::FLOAT as i32,
            data_location: EnumOrUnknown::new(DataLocation::EXTERNAL),
            external_data: vec![
                kv("location", self.weights.file_name.clone()),
                kv("offset", offset.to_string()),
                kv("length", length.to_string()),
            ],
            ..Default::default()
        });
        self.attached.insert(name.into(), ());
        name.into()
    }

    /// An inline int64 constant (shapes, axes, indices).
    pub fn const_i64(&mut self, values: &[i64], dims: &[i64]) -> String {
        let key = format!("i64{dims:?}{values:?}");
        if let Some(n) = self.consts.get(&key) {
            return n.clone();
        }
        let name = format!("const_{}", self.consts.len());
        self.graph.initializer.push(TensorProto {
            name: name.clone(),
            dims: dims.to_vec(),
            data_type: DataType::INT64 as i32,
            int64_data: values.to_vec(),
            ..Default::default()
        });
        self.consts.insert(key, name.clone());
        name
    }

    /// An inline float scalar or small vector.
    pub fn const_f32(&mut self, values: &[f32], dims: &[i64]) -> String {
        let key = format!(
            "f32{dims:?}{:?}",
            values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        if let Some(n) = self.consts.get(&key) {
            return n.clone();
        }
        let name = format!("const_{}", self.consts.len());
        self.graph.initializer.push(TensorProto {
            name: name.clone(),
            dims: dims.to_vec(),
            data_type: DataType::FLOAT as i32,
            float_data: values.to_vec(),
            ..Default::default()
        });
        self.consts.insert(key, name.clone());
        name
    }

    /// The dims `start..end` of `x`'s shape as an int64 vector (ONNX `Shape` with `start` and
    /// `end`), for nodes that work at any image size.
    pub fn shape(&mut self, x: &str, start: i64, end: i64) -> String {
        self.op1(
            "Shape",
            &[x],
            vec![("start", Attr::Int(start)), ("end", Attr::Int(end))],
        )
    }

    /// The `[H, W]` (int64) of images `x` `[B, C, H, W]`, read off the first image's shape. ONNX
    /// Runtime folds it into a constant once the session fixes `height` and `width` (free
    /// dimension overrides) even while the batch stays free, as it cannot fold `Shape(x)`; a
    /// folded size keeps the graph optimised exactly as a graph built for that size (the same
    /// convolution kernels, the same values).
    pub fn image_sides(&mut self, x: &str) -> String {
        let zero = self.const_i64(&[0], &[]);
        let first = self.op1("Gather", &[x, &zero], vec![("axis", Attr::Int(0))]);
        self.shape(&first, 1, 3)
    }

    /// The symbolic image dims of a graph: `[batch, C, height, width]`.
    pub fn image_dims(channels: usize) -> Vec<Dim> {
        vec![
            Dim::Named("batch"),
            Dim::Fixed(channels as i64),
            Dim::Named("height"),
            Dim::Named("width"),
        ]
    }

    pub fn finish(self) -> GraphProto {
        self.graph
    }
}

/// Wraps a graph into a model with the default-domain opset.
pub fn model(graph: GraphProto, doc: &str) -> ModelProto {
    ModelProto {
        ir_version: IR_VERSION,
        producer_name: "cold-train".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: doc.into(),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..Default::default()
        }],
        graph: MessageField::some(graph),
        ..Default::default()
    }
}
