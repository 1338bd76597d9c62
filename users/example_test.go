package users_test

import (
	"fmt"

	"github.com/civicstack/townhall/users"
)

func ExampleEffectiveCategories() {
	roads := &users.Department{ID: "roads", Categories: []string{"potholes", "lights"}}

	cats, all := users.EffectiveCategories(users.Profile{AllowedCategories: []string{"lights", "graffiti"}}, roads)
	fmt.Println(cats, all)
	cats, all = users.EffectiveCategories(users.Profile{AllowedCategories: []string{"graffiti"}}, roads)
	fmt.Println(cats, all)
	cats, all = users.EffectiveCategories(users.Profile{}, nil)
	fmt.Println(cats, all)
	// Output:
	// [lights] false
	// [] false
	// [] true
}

func ExampleChecklist_String() {
	c := users.Checklist{UserID: "amy", MunicipalityID: "springfield", UserCreated: true, ProfileCreated: true}
	fmt.Print(c)
	// Output:
	// onboarding of user amy at springfield:
	// [x] user created
	// [x] profile created
	// [ ] role assigned
	// [ ] department set
	// [ ] categories set
	// [ ] approved
	// [ ] welcome email sent
}
