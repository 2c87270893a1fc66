//! Small builders for the provider's schemas, so each resource reads as a table of attributes.

use std::collections::HashMap;

use tf_provider::schema::{Attribute, AttributeConstraint, AttributeType, Block, Description};

/// How an attribute is set.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Set {
    /// The configuration must set it.
    Required,
    /// The configuration may set it; otherwise it is null.
    Optional,
    /// The configuration may set it; otherwise the provider does.
    Defaulted,
    /// Only the provider sets it.
    Computed,
}

/// One attribute.
pub(crate) fn attr(ty: AttributeType, set: Set, description: &str) -> Attribute {
    Attribute {
        attr_type: ty,
        description: Description::markdown(description),
        constraint: match set {
            Set::Required => AttributeConstraint::Required,
            Set::Optional => AttributeConstraint::Optional,
            Set::Defaulted => AttributeConstraint::OptionalComputed,
            Set::Computed => AttributeConstraint::Computed,
        },
        sensitive: false,
        deprecated: false,
    }
}

/// A sensitive attribute (Terraform hides it in plans and output).
pub(crate) fn secret(mut a: Attribute) -> Attribute {
    a.sensitive = true;
    a
}

/// `list(string)`.
pub(crate) fn strings() -> AttributeType {
    AttributeType::List(Box::new(AttributeType::String))
}

/// A block of `attributes`, described.
pub(crate) fn block(description: &str, attributes: Vec<(&str, Attribute)>) -> Block {
    Block {
        version: 1,
        attributes: attributes
            .into_iter()
            .map(|(name, a)| (name.to_owned(), a))
            .collect::<HashMap<_, _>>(),
        description: Description::markdown(description),
        ..Block::default()
    }
}
