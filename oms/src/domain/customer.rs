use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::OrderError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub email: String,
    pub address: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewCustomer {
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub address: Option<String>,
}

impl NewCustomer {
    pub fn validate(&self) -> Result<(), OrderError> {
        // Limits count characters, as the messages say: a name in Greek or Japanese takes two
        // or three bytes a character and must not be held to a third of the length.
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(OrderError::Validation("name must be 1 to 200 characters".into()));
        }
        let email = self.email.trim();
        let valid_email = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.starts_with('.'));
        if !valid_email || email.contains(char::is_whitespace) {
            return Err(OrderError::Validation("email must be a valid address".into()));
        }
        if self.address.as_ref().is_some_and(|a| a.chars().count() > 1000) {
            return Err(OrderError::Validation("address must be at most 1000 characters".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str, email: &str) -> NewCustomer {
        NewCustomer { name: name.into(), email: email.into(), address: None }
    }

    #[test]
    fn validates_name_and_email() {
        assert!(new("Ada", "ada@example.com").validate().is_ok());
        assert!(new("", "ada@example.com").validate().is_err());
        assert!(new("Ada", "ada.example.com").validate().is_err());
        assert!(new("Ada", "@example.com").validate().is_err());
        assert!(new("Ada", "ada@localhost").validate().is_err());
        assert!(new("Ada", "a da@example.com").validate().is_err());
    }

    #[test]
    fn name_and_address_limits_count_characters_not_bytes() {
        let accented = "é".repeat(200);
        assert!(new(&accented, "e@example.com").validate().is_ok(), "200 characters (400 bytes) is within the limit");
        assert!(new(&"é".repeat(201), "e@example.com").validate().is_err());
        let mut with_address = new("Ada", "ada@example.com");
        with_address.address = Some("京".repeat(1000));
        assert!(with_address.validate().is_ok(), "1000 characters (3000 bytes) is within the limit");
        with_address.address = Some("京".repeat(1001));
        assert!(with_address.validate().is_err());
    }
}
