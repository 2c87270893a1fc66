//! `terraform-provider-latchkey`: the Latchkey provider as the plugin binary Terraform starts.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    latchkey_terraform::serve().await
}
