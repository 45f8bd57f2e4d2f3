//! Describe bodies: describeGlobal entries and sObject describes shaped like real ones
//! (the 56 field keys, the top-level keys, `urls`, `childRelationships`).

use serde_json::{Value as Json, json};

use super::{FieldDef, ObjectDef};
use crate::value::FieldType;

fn urls(o: &ObjectDef, version: &str) -> Json {
    let base = format!("/services/data/v{version}/sobjects/{}", o.name);
    json!({
        "compactLayouts": format!("{base}/describe/compactLayouts"),
        "rowTemplate": format!("{base}/{{ID}}"),
        "approvalLayouts": format!("{base}/describe/approvalLayouts"),
        "defaultValues": format!("{base}/defaultValues?recordTypeId&fields"),
        "listviews": format!("{base}/listviews"),
        "describe": format!("{base}/describe"),
        "quickActions": format!("{base}/quickActions"),
        "layouts": format!("{base}/describe/layouts"),
        "sobject": base,
    })
}

/// One entry of `GET /sobjects` (describeGlobal).
pub fn global_entry(o: &ObjectDef, version: &str) -> Json {
    let undeletable = o.deletable && o.has_is_deleted();
    json!({
        "activateable": false,
        "associateEntityType": null,
        "associateParentEntity": null,
        "createable": true,
        "custom": o.custom,
        "customSetting": false,
        "deepCloneable": false,
        "deletable": o.deletable,
        "deprecatedAndHidden": false,
        "feedEnabled": !o.custom,
        "hasSubtypes": false,
        "isInterface": false,
        "isSubtype": false,
        "keyPrefix": o.key_prefix,
        "label": o.label,
        "labelPlural": o.label_plural,
        "layoutable": true,
        "mergeable": matches!(o.name.as_str(), "Account" | "Contact" | "Lead" | "Case"),
        "mruEnabled": true,
        "name": o.name,
        "queryable": true,
        "replicateable": true,
        "retrieveable": true,
        "searchable": true,
        "triggerable": true,
        "undeletable": undeletable,
        "updateable": true,
        "urls": urls(o, version),
    })
}

/// The describe body of one field, with exactly the keys real describes carry.
pub fn field(fd: &FieldDef) -> Json {
    let picklist: Vec<Json> = fd
        .picklist
        .iter()
        .map(|v| json!({"active": true, "defaultValue": false, "label": v, "validFor": null, "value": v}))
        .collect();
    let is_reference = matches!(fd.ty, FieldType::Reference);
    json!({
        "aggregatable": fd.groupable || fd.ty.is_numeric(),
        "aiPredictionField": false,
        "autoNumber": fd.auto_number,
        "byteLength": fd.byte_length(),
        "calculated": fd.calculated(),
        "calculatedFormula": fd.formula.as_ref().map(|f| f.text()),
        "cascadeDelete": false,
        "caseSensitive": false,
        "compoundFieldName": fd.compound_field_name,
        "controllerName": null,
        "createable": fd.createable,
        "custom": fd.custom,
        "defaultValue": if fd.ty == FieldType::Boolean { json!(false) } else { Json::Null },
        "defaultValueFormula": null,
        "defaultedOnCreate": fd.defaulted_on_create,
        "dependentPicklist": false,
        "deprecatedAndHidden": false,
        "digits": fd.digits,
        "displayLocationInDecimal": false,
        "encrypted": fd.ty == FieldType::EncryptedString,
        "externalId": fd.external_id,
        "extraTypeInfo": fd.extra_type_info,
        "filterable": fd.filterable,
        "filteredLookupInfo": null,
        "formulaTreatNullNumberAsZero": false,
        "groupable": fd.groupable,
        "highScaleNumber": false,
        "htmlFormatted": fd.html_formatted,
        "idLookup": fd.ty == FieldType::Id || fd.external_id,
        "inlineHelpText": null,
        "label": fd.label,
        "length": fd.length,
        "mask": fd.mask,
        "maskType": fd.mask.as_ref().map(|_| "lastFour"),
        "name": fd.name,
        "nameField": fd.name_field,
        "namePointing": false,
        "nillable": fd.nillable,
        "permissionable": fd.nillable && !fd.calculated() && fd.createable,
        "picklistValues": picklist,
        "polymorphicForeignKey": false,
        "precision": fd.precision,
        "queryByDistance": false,
        "referenceTargetField": null,
        "referenceTo": fd.reference_to,
        "relationshipName": if is_reference { json!(fd.relationship_name) } else { Json::Null },
        "relationshipOrder": null,
        "restrictedDelete": false,
        "restrictedPicklist": fd.restricted_picklist,
        "scale": fd.scale,
        "searchPrefilterable": false,
        "soapType": fd.ty.soap_type(),
        "sortable": fd.sortable,
        "type": fd.ty.api_name(),
        "unique": fd.unique,
        "updateable": fd.updateable,
        "writeRequiresMasterRead": false,
    })
}

/// `GET /sobjects/{object}/describe`. `children` lists (child object, lookup field,
/// relationship name) for the objects that point at this one.
pub fn object(o: &ObjectDef, version: &str, children: &[(String, String, Option<String>)]) -> Json {
    let mut top = global_entry(o, version);
    let child_relationships: Vec<Json> = children
        .iter()
        .map(|(child, field, rel)| {
            json!({
                "cascadeDelete": false,
                "childSObject": child,
                "deprecatedAndHidden": false,
                "field": field,
                "junctionIdListNames": [],
                "junctionReferenceTo": [],
                "relationshipName": rel,
                "restrictedDelete": false,
            })
        })
        .collect();
    let extra = json!({
        "actionOverrides": [],
        "childRelationships": child_relationships,
        "compactLayoutable": true,
        "defaultImplementation": null,
        "extendedBy": null,
        "extendsInterfaces": null,
        "fields": o.fields.iter().map(field).collect::<Vec<_>>(),
        "implementedBy": null,
        "implementsInterfaces": null,
        "listviewable": null,
        "lookupLayoutable": null,
        "namedLayoutInfos": [],
        "networkScopeFieldName": null,
        "recordTypeInfos": [{
            "active": true, "available": true, "defaultRecordTypeMapping": true,
            "developerName": "Master", "master": true, "name": "Master",
            "recordTypeId": "012000000000000AAA",
            "urls": {"layout": format!("/services/data/v{version}/sobjects/{}/describe/layouts/012000000000000AAA", o.name)}
        }],
        "searchLayoutable": true,
        "sobjectDescribeOption": "FULL",
        "supportedScopes": [{"label": "All", "name": "everything"}, {"label": "My", "name": "mine"}],
    });
    if let (Json::Object(t), Json::Object(e)) = (&mut top, extra) {
        for (k, v) in e {
            t.insert(k, v);
        }
        t.sort_keys();
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::objects;

    const FIELD_KEYS: &str = "aggregatable, aiPredictionField, autoNumber, byteLength, calculated, calculatedFormula, cascadeDelete, caseSensitive, compoundFieldName, controllerName, createable, custom, defaultValue, defaultValueFormula, defaultedOnCreate, dependentPicklist, deprecatedAndHidden, digits, displayLocationInDecimal, encrypted, externalId, extraTypeInfo, filterable, filteredLookupInfo, formulaTreatNullNumberAsZero, groupable, highScaleNumber, htmlFormatted, idLookup, inlineHelpText, label, length, mask, maskType, name, nameField, namePointing, nillable, permissionable, picklistValues, polymorphicForeignKey, precision, queryByDistance, referenceTargetField, referenceTo, relationshipName, relationshipOrder, restrictedDelete, restrictedPicklist, scale, searchPrefilterable, soapType, sortable, type, unique, updateable, writeRequiresMasterRead";
    const TOP_KEYS: &str = "actionOverrides, activateable, associateEntityType, associateParentEntity, childRelationships, compactLayoutable, createable, custom, customSetting, deepCloneable, defaultImplementation, deletable, deprecatedAndHidden, extendedBy, extendsInterfaces, feedEnabled, fields, hasSubtypes, implementedBy, implementsInterfaces, isInterface, isSubtype, keyPrefix, label, labelPlural, layoutable, listviewable, lookupLayoutable, mergeable, mruEnabled, name, namedLayoutInfos, networkScopeFieldName, queryable, recordTypeInfos, replicateable, retrieveable, searchLayoutable, searchable, sobjectDescribeOption, supportedScopes, triggerable, undeletable, updateable, urls";

    fn keys(v: &Json) -> String {
        let mut k: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        k.sort_by_key(|s| s.to_lowercase());
        k.join(", ")
    }

    #[test]
    fn describes_carry_exactly_the_real_keys() {
        let mut expect_fields: Vec<_> = FIELD_KEYS.split(", ").collect();
        expect_fields.sort_by_key(|s| s.to_lowercase());
        let mut expect_top: Vec<_> = TOP_KEYS.split(", ").collect();
        expect_top.sort_by_key(|s| s.to_lowercase());
        for o in objects::all() {
            let d = object(&o, "62.0", &[]);
            assert_eq!(keys(&d), expect_top.join(", "));
            for f in d["fields"].as_array().unwrap() {
                assert_eq!(keys(f), expect_fields.join(", "), "{}", f["name"]);
            }
        }
    }

    #[test]
    fn field_shapes_match_real_samples() {
        let all = objects::all();
        let account = all.iter().find(|o| o.name == "Account").unwrap();
        let get = |n: &str| field(&account.fields[account.field_index(n).unwrap()]);
        let id = get("Id");
        assert_eq!(
            (id["type"].as_str(), id["soapType"].as_str(), id["length"].as_u64()),
            (Some("id"), Some("tns:ID"), Some(18))
        );
        let owner = get("OwnerId");
        assert_eq!(owner["referenceTo"], json!(["User"]));
        assert_eq!(owner["relationshipName"], json!("Owner"));
        let lat = get("BillingLatitude");
        assert_eq!((lat["precision"].as_u64(), lat["scale"].as_u64()), (Some(18), Some(15)));
        assert_eq!(get("BillingCity")["byteLength"], json!(120));
        assert_eq!(get("NumberOfEmployees")["digits"], json!(8));
        assert_eq!(get("Id")["byteLength"], json!(18));
        assert_eq!(get("BillingAddress")["soapType"], json!("urn:address"));
        assert_eq!(get("Name")["relationshipName"], Json::Null);
    }
}
