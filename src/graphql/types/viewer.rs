use async_graphql::Object;

/// The owner that the request's API key belongs to.
pub struct Viewer(pub crate::domain::Viewer);

/// The owner that the request's API key belongs to.
#[Object]
impl Viewer {
    /// The owner's name, as given to `makima api-key create --owner`.
    async fn owner(&self) -> &str {
        &self.0.owner
    }
}
