//! What a Latchkey resource has to say, and nothing else: [`Managed`] (schema, check, plan,
//! read, apply, remove, import), adapted once to `tf_provider::Resource` by [`Managing`]. None of
//! the resources keeps private state.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::Schema;
use tf_provider::value::ValueEmpty;
use tf_provider::{AttributePath, Diagnostics, Resource};

/// A resource type of this provider.
#[async_trait]
pub(crate) trait Managed: Send + Sync {
    /// Its attributes.
    type State<'a>: Serialize + Deserialize<'a> + Send;

    /// Its schema.
    fn schema(&self) -> Schema;

    /// Checks the configuration (values may be unknown), naming the attribute at fault.
    fn check(&self, _diags: &mut Diagnostics, _config: &Self::State<'_>) -> Option<()> {
        Some(())
    }

    /// The planned state from the proposed one (`prior`: `None` when creating), and the
    /// attributes whose change replaces the resource.
    async fn plan<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: Option<&Self::State<'a>>,
        proposed: Self::State<'a>,
    ) -> Option<(Self::State<'a>, Vec<AttributePath>)>;

    /// The resource as the control plane has it now; `None` (without an error) if it is gone.
    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
    ) -> Option<Self::State<'a>>;

    /// Makes the control plane match `planned` (`prior`: `None` when creating).
    async fn apply<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: Option<Self::State<'a>>,
        planned: Self::State<'a>,
    ) -> Option<Self::State<'a>>;

    /// Removes it (already gone is fine).
    async fn remove<'a>(&self, diags: &mut Diagnostics, prior: Self::State<'a>) -> Option<()>;

    /// The state of an existing object, by the id `terraform import` was given.
    async fn import<'a>(&self, diags: &mut Diagnostics, id: String) -> Option<Self::State<'a>>;
}

/// A [`Managed`] resource as Terraform sees it.
pub(crate) struct Managing<M>(pub(crate) M);

#[async_trait]
impl<M: Managed> Resource for Managing<M> {
    type State<'a> = M::State<'a>;
    type PrivateState<'a> = ValueEmpty;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _: &mut Diagnostics) -> Option<Schema> {
        Some(self.0.schema())
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: M::State<'a>) -> Option<()> {
        self.0.check(diags, &config)
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: M::State<'a>,
        _: ValueEmpty,
        _: ValueEmpty,
    ) -> Option<(M::State<'a>, ValueEmpty)> {
        Some((self.0.read(diags, state).await?, ValueEmpty::default()))
    }

    async fn plan_create<'a>(
        &self,
        diags: &mut Diagnostics,
        proposed: M::State<'a>,
        _: M::State<'a>,
        _: ValueEmpty,
    ) -> Option<(M::State<'a>, ValueEmpty)> {
        let (planned, _) = self.0.plan(diags, None, proposed).await?;
        Some((planned, ValueEmpty::default()))
    }

    async fn plan_update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: M::State<'a>,
        proposed: M::State<'a>,
        _: M::State<'a>,
        _: ValueEmpty,
        _: ValueEmpty,
    ) -> Option<(M::State<'a>, ValueEmpty, Vec<AttributePath>)> {
        let (planned, replace) = self.0.plan(diags, Some(&prior), proposed).await?;
        Some((planned, ValueEmpty::default(), replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _: &mut Diagnostics,
        _: M::State<'a>,
        _: ValueEmpty,
        _: ValueEmpty,
    ) -> Option<ValueEmpty> {
        Some(ValueEmpty::default())
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned: M::State<'a>,
        _: M::State<'a>,
        _: ValueEmpty,
        _: ValueEmpty,
    ) -> Option<(M::State<'a>, ValueEmpty)> {
        Some((
            self.0.apply(diags, None, planned).await?,
            ValueEmpty::default(),
        ))
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: M::State<'a>,
        planned: M::State<'a>,
        _: M::State<'a>,
        _: ValueEmpty,
        _: ValueEmpty,
    ) -> Option<(M::State<'a>, ValueEmpty)> {
        let applied = self.0.apply(diags, Some(prior), planned).await?;
        Some((applied, ValueEmpty::default()))
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: M::State<'a>,
        _: ValueEmpty,
        _: ValueEmpty,
    ) -> Option<()> {
        self.0.remove(diags, prior).await
    }

    async fn import<'a>(
        &self,
        diags: &mut Diagnostics,
        id: String,
    ) -> Option<(M::State<'a>, ValueEmpty)> {
        Some((self.0.import(diags, id).await?, ValueEmpty::default()))
    }
}
