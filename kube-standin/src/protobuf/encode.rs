//! Answers in protobuf: the stored JSON turned back into a kind's message (the inverse of the decoder's
//! mapping), wrapped in `k8s\0` + `runtime.Unknown`, for clients whose first `Accept` type is
//! protobuf (client-go's typed clients). Anything the encoder cannot express keeps its JSON answer,
//! which client-go accepts too.

use base64::Engine as _;
use prost_reflect::prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value as PValue};
use serde_json::Value;

use super::{MAGIC, Schemas};

impl Schemas {
    /// The protobuf body for a JSON object with `apiVersion` and `kind`; `Err` says why it has none
    /// (a kind without schema, a value of the wrong shape).
    pub fn encode_object(&self, object: &Value) -> Result<Vec<u8>, String> {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let descriptor = self
            .message_for(api_version, kind)
            .ok_or_else(|| format!("no protobuf schema for {api_version}, Kind={kind}"))?;
        let message = to_message(descriptor, object)?;
        let mut envelope = DynamicMessage::new(self.unknown.clone());
        let mut type_meta = DynamicMessage::new(
            field(&self.unknown, "typeMeta")?
                .kind()
                .as_message()
                .ok_or("runtime.Unknown.typeMeta is not a message")?
                .clone(),
        );
        type_meta.set_field_by_name("apiVersion", PValue::String(api_version.into()));
        type_meta.set_field_by_name("kind", PValue::String(kind.into()));
        envelope.set_field_by_name("typeMeta", PValue::Message(type_meta));
        envelope.set_field_by_name("raw", PValue::Bytes(message.encode_to_vec().into()));
        envelope.set_field_by_name("contentEncoding", PValue::String(String::new()));
        envelope.set_field_by_name("contentType", PValue::String(String::new()));
        let mut body = MAGIC.to_vec();
        body.extend(envelope.encode_to_vec());
        Ok(body)
    }
}

fn field(descriptor: &MessageDescriptor, name: &str) -> Result<FieldDescriptor, String> {
    descriptor
        .get_field_by_name(name)
        .ok_or_else(|| format!("{} has no field {name}", descriptor.full_name()))
}

fn with(descriptor: &MessageDescriptor, fields: Vec<(&str, PValue)>) -> Result<DynamicMessage, String> {
    let mut message = DynamicMessage::new(descriptor.clone());
    for (name, value) in fields {
        message.set_field(&field(descriptor, name)?, value);
    }
    Ok(message)
}

fn to_message(descriptor: &MessageDescriptor, json: &Value) -> Result<DynamicMessage, String> {
    let name = descriptor.full_name();
    let embedded = |raw_field: &str| {
        let raw = serde_json::to_vec(json).map_err(|e| e.to_string())?;
        with(descriptor, vec![(raw_field, PValue::Bytes(raw.into()))])
    };
    match (name, json) {
        (
            "apimachinery.pkg.apis.meta.v1.Time" | "apimachinery.pkg.apis.meta.v1.MicroTime",
            Value::String(s),
        ) => {
            let (seconds, nanos) = parse_rfc3339(s).ok_or_else(|| format!("invalid time {s:?}"))?;
            with(
                descriptor,
                vec![("seconds", PValue::I64(seconds)), ("nanos", PValue::I32(nanos))],
            )
        }
        ("apimachinery.pkg.api.resource.Quantity", Value::String(s)) => {
            with(descriptor, vec![("string", PValue::String(s.clone()))])
        }
        ("apimachinery.pkg.api.resource.Quantity", Value::Number(n)) => {
            with(descriptor, vec![("string", PValue::String(n.to_string()))])
        }
        ("apimachinery.pkg.util.intstr.IntOrString", Value::Number(n)) => {
            let int = n
                .as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or("IntOrString out of range")?;
            with(
                descriptor,
                vec![("type", PValue::I64(0)), ("intVal", PValue::I32(int))],
            )
        }
        ("apimachinery.pkg.util.intstr.IntOrString", Value::String(s)) => with(
            descriptor,
            vec![("type", PValue::I64(1)), ("strVal", PValue::String(s.clone()))],
        ),
        ("apimachinery.pkg.runtime.RawExtension", _) => embedded("raw"),
        ("apimachinery.pkg.apis.meta.v1.FieldsV1", _) => embedded("Raw"),
        (n, _) if n.starts_with("apiextensions_apiserver.") && n.ends_with(".JSON") => embedded("raw"),
        (n, Value::Bool(b)) if n.ends_with(".JSONSchemaPropsOrBool") => {
            with(descriptor, vec![("allows", PValue::Bool(*b))])
        }
        (n, Value::Array(_)) if n.ends_with(".JSONSchemaPropsOrArray") => {
            let items = list(&field(descriptor, "jSONSchemas")?, json)?;
            with(descriptor, vec![("jSONSchemas", items)])
        }
        (n, Value::Array(_)) if n.ends_with(".JSONSchemaPropsOrStringArray") => {
            let items = list(&field(descriptor, "property")?, json)?;
            with(descriptor, vec![("property", items)])
        }
        (n, Value::Object(_))
            if n.starts_with("apiextensions_apiserver.") && n.contains(".JSONSchemaPropsOr") =>
        {
            let schema = field(descriptor, "schema")?;
            let inner = schema
                .kind()
                .as_message()
                .ok_or("schema is not a message")?
                .clone();
            with(
                descriptor,
                vec![("schema", PValue::Message(to_message(&inner, json)?))],
            )
        }
        (_, Value::Array(_))
            if descriptor.fields().len() == 1
                && descriptor.get_field_by_name("items").is_some_and(|f| f.is_list()) =>
        {
            let items = list(&field(descriptor, "items")?, json)?;
            with(descriptor, vec![("items", items)])
        }
        (_, Value::Object(map)) => {
            let schema_props = descriptor.name() == "JSONSchemaProps";
            let mut message = DynamicMessage::new(descriptor.clone());
            for f in descriptor.fields() {
                let key = if schema_props {
                    super::schema_props_json_name(f.name())
                } else {
                    f.name().to_string()
                };
                match map.get(&key) {
                    None | Some(Value::Null) => {}
                    Some(v) => message.set_field(&f, value(&f, v)?),
                }
            }
            Ok(message)
        }
        _ => Err(format!("{name} cannot hold {json}")),
    }
}

fn list(f: &FieldDescriptor, json: &Value) -> Result<PValue, String> {
    let items = json
        .as_array()
        .ok_or_else(|| format!("{} must be a list", f.name()))?;
    items
        .iter()
        .map(|item| single(f, &f.kind(), item))
        .collect::<Result<Vec<_>, _>>()
        .map(PValue::List)
}

fn value(f: &FieldDescriptor, json: &Value) -> Result<PValue, String> {
    if f.is_map() {
        let entry = f.kind();
        let entry = entry.as_message().ok_or("a map field without entry message")?;
        let value_field = entry.map_entry_value_field();
        let object = json
            .as_object()
            .ok_or_else(|| format!("{} must be an object", f.name()))?;
        let mut out = std::collections::HashMap::new();
        for (k, v) in object {
            if !v.is_null() {
                out.insert(
                    MapKey::String(k.clone()),
                    single(&value_field, &value_field.kind(), v)?,
                );
            }
        }
        Ok(PValue::Map(out))
    } else if f.is_list() {
        list(f, json)
    } else {
        single(f, &f.kind(), json)
    }
}

fn single(f: &FieldDescriptor, kind: &Kind, json: &Value) -> Result<PValue, String> {
    let wrong = || format!("{} cannot hold {json}", f.full_name());
    let int = || json.as_i64().ok_or_else(wrong);
    Ok(match kind {
        Kind::Message(m) => PValue::Message(to_message(m, json)?),
        Kind::String => PValue::String(json.as_str().ok_or_else(wrong)?.to_string()),
        Kind::Bytes => PValue::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(json.as_str().ok_or_else(wrong)?)
                .map_err(|_| wrong())?
                .into(),
        ),
        Kind::Bool => PValue::Bool(json.as_bool().ok_or_else(wrong)?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            PValue::I32(i32::try_from(int()?).map_err(|_| wrong())?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => PValue::I64(int()?),
        Kind::Uint32 | Kind::Fixed32 => PValue::U32(u32::try_from(int()?).map_err(|_| wrong())?),
        Kind::Uint64 | Kind::Fixed64 => PValue::U64(json.as_u64().ok_or_else(wrong)?),
        Kind::Double => PValue::F64(json.as_f64().ok_or_else(wrong)?),
        Kind::Float => PValue::F32(json.as_f64().ok_or_else(wrong)? as f32),
        Kind::Enum(_) => PValue::EnumNumber(i32::try_from(int()?).map_err(|_| wrong())?),
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` → (seconds since the epoch, nanoseconds in `0..1e9`, as
/// protobuf's `Timestamp` wants them).
pub fn parse_rfc3339(s: &str) -> Option<(i64, i32)> {
    let t: jiff::Timestamp = s.parse().ok()?;
    let (seconds, nanos) = (t.as_second(), t.subsec_nanosecond());
    Some(if nanos < 0 {
        (seconds - 1, nanos + 1_000_000_000)
    } else {
        (seconds, nanos)
    })
}
